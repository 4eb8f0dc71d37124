package federation

import (
	"fmt"
	"slices"
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/fabricml/fabricml/chaincode/caller"
	"github.com/fabricml/fabricml/chaincode/consortium"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

const (
	Finalized = "FINALIZED"
	Closed    = "CLOSED"
)

// Settle records how a round ended and moves its tokens: once a quorum of the round's
// orgs posted the same assessment, or once a deadline passed for certain. Anyone of a
// member org may call it, at any time after that: it is off the critical path (the next
// round's commitments do not wait for it), and it writes no key that a commitment or
// post reads, except a participant's record when its standing changes. Settling a
// settled round returns its result unchanged.
func (c *Contract) Settle(ctx contractapi.TransactionContextInterface, id string, round int) (*RoundResult, error) {
	t, _, now, err := c.loadNow(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := requireMember(ctx); err != nil {
		return nil, err
	}
	if r, found, err := roundResult(ctx, id, round); err != nil || found {
		return r, err
	}
	st, ms, v, err := c.nextToSettle(ctx, t, round)
	if err != nil {
		return nil, err
	}
	oc, err := c.decide(ctx, t, v, now)
	if err != nil {
		return nil, err
	}
	return c.settle(ctx, &settlement{t: t, st: st, members: ms, view: v, now: now, outcome: oc})
}

// nextToSettle: the round is the task's next unsettled one.
func (c *Contract) nextToSettle(ctx contractapi.TransactionContextInterface, t *Task, round int) (*TaskState, []Participant, *roundView, error) {
	if t.Status != StatusRunning {
		return nil, nil, nil, ledgerutil.Refuse(ledgerutil.WrongPhase, "task %s is %s", t.ID, t.Status)
	}
	st, err := loadState(ctx, t.ID)
	if err != nil {
		return nil, nil, nil, err
	}
	if st.Done || round != st.SettledRound+1 {
		return nil, nil, nil, ledgerutil.Refuse(ledgerutil.WrongPhase, "task %s has settled %d round(s) (done: %t); round %d is not the next to settle",
			t.ID, st.SettledRound, st.Done, round)
	}
	ms, err := members(ctx, t)
	if err != nil {
		return nil, nil, nil, err
	}
	v, err := settledView(ctx, t, ms, round, "rounds are settled in order")
	return st, ms, v, err
}

func requireMember(ctx contractapi.TransactionContextInterface) error {
	who, err := caller.Of(ctx)
	if err != nil {
		return err
	}
	ms, err := consortium.MemberMSPIDs(ctx)
	if err != nil {
		return err
	}
	if !slices.Contains(ms, who.MSPID) {
		return ledgerutil.Refuse(ledgerutil.Forbidden, "%s is not a consortium member", who.MSPID)
	}
	return nil
}

// outcome is what a round's records decide.
type outcome struct {
	status string
	reason string
	verdict
}

// decide how a round ends, or refuse (WRONG_PHASE) while it can still go either way.
func (c *Contract) decide(ctx contractapi.TransactionContextInterface, t *Task, v *roundView, now time.Time) (*outcome, error) {
	if !v.closed(t, now) {
		return nil, ledgerutil.Refuse(ledgerutil.WrongPhase, "%d of %d participants committed to round %d and its commitments are open until %s",
			len(v.commits), len(v.active), v.round, stamp(v.times.Commit))
	}
	if n := len(v.commits); n < t.MinParticipants {
		return &outcome{status: Closed, reason: fmt.Sprintf("only %d of the %d required participants committed before %s", n, t.MinParticipants, stamp(v.times.Commit)),
			verdict: verdict{agreeing: []string{}, disagreeing: []string{}}}, nil
	}
	posts, err := c.aggregates(ctx, t.ID, v.round)
	if err != nil {
		return nil, err
	}
	q := quorum(posts, orgs(v.active))
	if q.agreed != nil {
		if usable := len(v.commits) - len(q.agreed.Missing); usable < t.MinParticipants {
			return &outcome{status: Closed, reason: fmt.Sprintf("a quorum agreed that only %d updates were usable: the model is unchanged", usable), verdict: q}, nil
		}
		return &outcome{status: Finalized, verdict: q}, nil
	}
	if !t.passed(now, v.times.Aggregate) {
		return nil, ledgerutil.Refuse(ledgerutil.WrongPhase, "%d of %d organizations posted an assessment of round %d, no quorum yet, and the aggregate phase ends at %s",
			len(posts), len(orgs(v.active)), v.round, stamp(v.times.Aggregate))
	}
	return &outcome{status: Closed, reason: "no quorum of organizations posted the same assessment before " + stamp(v.times.Aggregate), verdict: q}, nil
}
