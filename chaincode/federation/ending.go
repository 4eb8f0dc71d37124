package federation

import (
	"fmt"
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/fabricml/fabricml/chaincode/caller"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

// Cancel: an admin of the creator's org calls the task off before it starts; every
// stake goes back to its org and the escrowed rewards to the creator.
func (c *Contract) Cancel(ctx contractapi.TransactionContextInterface, id string) (*Task, error) {
	who, t, k, _, err := c.loadAsCaller(ctx, id)
	if err != nil {
		return nil, err
	}
	if who.NodeRole != caller.NodeRoleAdmin || who.MSPID != t.Creator {
		return nil, ledgerutil.Refuse(ledgerutil.Forbidden, "only an admin of %s, which created task %s, may cancel it", t.Creator, id)
	}
	if t.Status == StatusCancelled {
		return nil, ledgerutil.Refuse(ledgerutil.AlreadyDone, "task %s is already cancelled", id)
	}
	if t.Status != StatusEnrolling {
		return nil, ledgerutil.Refuse(ledgerutil.WrongPhase, "task %s is %s; it can be cancelled only before it starts", id, t.Status)
	}
	if _, err := refundAll(ctx, t, "cancelled by its creator"); err != nil {
		return nil, err
	}
	t.Status = StatusCancelled
	return t, c.save(ctx, k, t, "TaskCancelled")
}

// Close ends a task that cannot go on, and anyone of a member org may call it: one
// whose enrollment ended without a start (everything is refunded), or a running one
// whose current round's commit phase ran its full length with fewer commitments than
// the task needs (that round is settled as closed, and the task ends: the remaining
// stakes go back, the unpaid rewards to the creator).
func (c *Contract) Close(ctx contractapi.TransactionContextInterface, id string) (*TaskState, error) {
	t, k, now, err := c.loadNow(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := requireMember(ctx); err != nil {
		return nil, err
	}
	switch t.Status {
	case StatusEnrolling:
		end, err := t.enrollDeadline()
		if err != nil {
			return nil, err
		}
		if !t.passed(now, end) {
			return nil, ledgerutil.Refuse(ledgerutil.WrongPhase, "task %s is enrolling until %s; its creator may Cancel it", id, stamp(end))
		}
		st, err := refundAll(ctx, t, "enrollment ended without a start")
		if err != nil {
			return nil, err
		}
		t.Status = StatusClosed
		return st, c.save(ctx, k, t, "TaskClosed")
	case StatusRunning:
		return c.closeStalled(ctx, t, now)
	}
	return nil, ledgerutil.Refuse(ledgerutil.AlreadyDone, "task %s is already %s", id, t.Status)
}

func (c *Contract) closeStalled(ctx contractapi.TransactionContextInterface, t *Task, now time.Time) (*TaskState, error) {
	st, err := loadState(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	if st.Done {
		return nil, ledgerutil.Refuse(ledgerutil.AlreadyDone, "task %s is done: %s", t.ID, st.Reason)
	}
	st, ms, v, err := c.nextToSettle(ctx, t, st.SettledRound+1)
	if err != nil {
		return nil, err
	}
	if !v.closed(t, now) || len(v.commits) >= t.MinParticipants {
		return nil, ledgerutil.Refuse(ledgerutil.WrongPhase, "task %s can go on: round %d has %d of %d commitments, open until %s",
			t.ID, v.round, len(v.commits), len(v.active), stamp(v.times.Commit))
	}
	reason := fmt.Sprintf("only %d of the %d required participants committed before %s", len(v.commits), t.MinParticipants, stamp(v.times.Commit))
	oc := &outcome{status: Closed, reason: reason, verdict: verdict{agreeing: []string{}, disagreeing: []string{}}}
	s := &settlement{t: t, st: st, members: ms, view: v, now: now, outcome: oc, endTask: "closed as stalled: " + reason}
	if _, err := c.settle(ctx, s); err != nil {
		return nil, err
	}
	return s.st, nil
}

// refundAll gives every stake back to its org and the escrowed rewards to the creator.
func refundAll(ctx contractapi.TransactionContextInterface, t *Task, reason string) (*TaskState, error) {
	st, err := loadState(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	ms, err := members(ctx, t)
	if err != nil {
		return nil, err
	}
	deltas := map[string]int64{t.Creator: st.RewardLeft + st.Carry + st.Forfeit} // before a start there are no forfeits
	paid := st.RewardLeft + st.Carry + st.Forfeit
	for _, m := range ms {
		deltas[m.MSPID] += m.Stake
		paid += m.Stake
	}
	if paid != st.Escrow {
		return nil, ledgerutil.Refuse(ledgerutil.Internal, "task %s holds %d tokens but its stakes and rewards add up to %d", t.ID, st.Escrow, paid)
	}
	if err := pay(ctx, deltas); err != nil {
		return nil, ledgerutil.Context(err, "refunding task "+t.ID)
	}
	st.Escrow, st.RewardLeft, st.Carry, st.Forfeit, st.Done, st.Reason = 0, 0, 0, 0, true, reason
	return st, saveState(ctx, st)
}
