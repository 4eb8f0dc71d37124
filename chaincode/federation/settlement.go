package federation

import (
	"fmt"
	"slices"
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/fabricml/fabricml/chaincode/ledgerutil"
	"github.com/fabricml/fabricml/chaincode/token"
)

// settlement is one round's settlement as it is worked out: the pool of the round
// (its reward, what earlier rounds carried, slashed stakes and penalties), the credits
// per org and the participants whose record changes. Nothing is written until it adds
// up: what leaves the escrow is exactly what the orgs are credited.
type settlement struct {
	t        *Task
	st       *TaskState
	members  []Participant
	view     *roundView
	now      time.Time
	outcome  *outcome
	endTask  string // set: end the task after this round, for this reason
	res      *RoundResult
	pool     int64 // everything this round pays out
	forfeit  int64 // the part of the pool that is slashed stakes and penalties
	deltas   map[string]int64
	changed  []int
	escrowed int64
}

func (c *Contract) settle(ctx contractapi.TransactionContextInterface, s *settlement) (*RoundResult, error) {
	s.begin(ctx)
	for _, step := range []func() error{s.takeReward, s.penalizeAbsent, s.slash, s.reward, s.end, s.balance} {
		if err := step(); err != nil {
			return nil, ledgerutil.Context(err, fmt.Sprintf("settling round %d of task %s", s.view.round, s.t.ID))
		}
	}
	return s.res, s.apply(ctx)
}

func (s *settlement) begin(ctx contractapi.TransactionContextInterface) {
	oc := s.outcome
	s.res = &RoundResult{TaskID: s.t.ID, Round: s.view.round, Status: oc.status, Reason: oc.reason, Agreeing: oc.agreeing, Disagreeing: oc.disagreeing,
		Rewards: map[string]int64{}, Slashed: []string{}, Missing: []string{}, Penalized: map[string]int64{}, Dropped: []string{}, Forfeits: map[string]int64{},
		CommitClose: stamp(s.view.times.Close), SettledAt: stamp(s.now), TxID: ctx.GetStub().GetTxID()}
	s.deltas, s.escrowed = map[string]int64{}, s.st.Escrow
}

// forfeited adds a slashed stake or a penalty to the pool.
func (s *settlement) forfeited(amount int64) (err error) {
	if s.forfeit, err = token.Add(s.forfeit, amount); err == nil {
		s.pool, err = token.Add(s.pool, amount)
	}
	return err
}

// takeReward: the round's reward leaves the escrowed rewards for the pool, with what
// earlier rounds carried.
func (s *settlement) takeReward() (err error) {
	if s.st.RewardLeft < s.t.RewardPerRound {
		return ledgerutil.Refuse(ledgerutil.Internal, "the escrow holds %d of the %d round reward", s.st.RewardLeft, s.t.RewardPerRound)
	}
	s.st.RewardLeft -= s.t.RewardPerRound
	s.forfeit, s.st.Forfeit = s.st.Forfeit, 0
	s.pool, s.st.Carry = s.st.Carry, 0
	if s.pool, err = token.Add(s.pool, s.forfeit); err != nil {
		return err
	}
	s.pool, err = token.Add(s.pool, s.t.RewardPerRound)
	return err
}

// penalizeAbsent: a participant that committed nothing in a commit phase that ran its
// full length loses a tenth of its stake to the pool; after two such rounds in a row it
// is dropped and the rest of its stake refunded, so the others no longer wait for it.
func (s *settlement) penalizeAbsent() error {
	for i := range s.members {
		m := &s.members[i]
		if !m.activeIn(s.view.round) || (s.view.commits[m.Key()] != nil && m.Missed == 0) {
			continue
		}
		s.changed = append(s.changed, i)
		if s.view.commits[m.Key()] != nil {
			m.Missed = 0
			continue
		}
		penalty := m.Stake / missPenaltyDivisor
		m.Stake -= penalty
		m.Missed++
		s.res.Penalized[m.Key()] = penalty
		if err := s.forfeited(penalty); err != nil {
			return err
		}
		if m.Missed >= missesToDrop {
			s.deltas[m.MSPID] += m.Stake
			m.Stake, m.Out, m.OutRound = 0, OutDropped, s.view.round
			s.res.Dropped = append(s.res.Dropped, m.Key())
		}
	}
	return nil
}

// slash: the participants the quorum flagged or found missing lose their stake to the pool.
func (s *settlement) slash() error {
	if s.outcome.agreed == nil {
		return nil
	}
	s.res.Missing = s.outcome.agreed.Missing
	for _, key := range sortedSet(slices.Concat(s.outcome.agreed.Flagged, s.outcome.agreed.Missing)) {
		i := slices.IndexFunc(s.members, func(p Participant) bool { return p.Key() == key })
		m := &s.members[i] // checked at post: a committer of this round
		if err := s.forfeited(m.Stake); err != nil {
			return err
		}
		m.Stake, m.Slashed, m.Out, m.OutRound = 0, true, OutSlashed, s.view.round
		s.changed = append(s.changed, i)
		s.res.Slashed = append(s.res.Slashed, key)
	}
	return nil
}

// reward: a round a quorum assessed pays its pool to the usable, unflagged updates'
// orgs by the agreed scores (even when too few were usable to change the model: they
// did their part, and a withholder's stake must not flow back to the creator's org);
// otherwise the pool is carried: the reward part for the creator, the forfeits apart.
func (s *settlement) reward() error {
	s.res.Pool = s.pool
	if s.outcome.status == Finalized {
		s.res.AggregateDigest = s.outcome.agreed.Digest
	}
	rewarded := s.keptToProtocol()
	if s.outcome.agreed == nil || len(rewarded) == 0 {
		s.st.Carry, s.st.Forfeit, s.res.Carried = s.pool-s.forfeit, s.forfeit, s.pool
		return nil
	}
	s.res.Rewards = shares(s.pool, rewarded, s.outcome.agreed.Scores)
	for _, p := range rewarded {
		s.deltas[p.MSPID] += s.res.Rewards[p.Key()]
	}
	return nil
}

// keptToProtocol: the round's committers that are neither missing nor flagged.
func (s *settlement) keptToProtocol() []Participant {
	out := []Participant{}
	for _, p := range s.view.committers() {
		if !slices.Contains(s.res.Slashed, p.Key()) {
			out = append(out, p)
		}
	}
	return out
}

// end: after its last round, or when too few participants (or orgs) remain, the task
// ends: the remaining stakes go back to their orgs, unpaid rewards to the creator.
func (s *settlement) end() error {
	remaining := activeIn(s.members, s.view.round+1)
	reason := s.endTask
	switch {
	case reason != "":
	case s.view.round == s.t.Rounds:
		reason = fmt.Sprintf("all %d rounds are settled", s.t.Rounds)
	case len(remaining) < s.t.MinParticipants:
		reason = fmt.Sprintf("%d participants remain, fewer than the %d required", len(remaining), s.t.MinParticipants)
	case len(orgs(remaining)) < 2:
		reason = "the remaining participants belong to fewer than two organizations"
	default:
		return nil
	}
	for _, p := range remaining {
		s.deltas[p.MSPID] += p.Stake
	}
	s.deltas[s.t.Creator] += s.st.RewardLeft + s.st.Carry
	s.shareForfeits()
	s.st.RewardLeft, s.st.Carry, s.st.Forfeit, s.st.Done, s.st.Reason = 0, 0, 0, true, reason
	s.res.TaskDone = true
	return nil
}

// shareForfeits: at the task's end, stakes and penalties no round paid out go evenly to
// the orgs of this round's participants that kept to the protocol (to the creator if
// none did): never back to the creator just because the task failed.
func (s *settlement) shareForfeits() {
	if s.st.Forfeit == 0 {
		return
	}
	names := orgs(s.keptToProtocol())
	if len(names) == 0 {
		names = []string{s.t.Creator}
	}
	each := s.st.Forfeit / int64(len(names))
	for i, msp := range names {
		share := each
		if i == len(names)-1 {
			share = s.st.Forfeit - each*int64(len(names)-1)
		}
		s.deltas[msp] += share
		s.res.Forfeits[msp] = share
	}
}

// balance checks that the escrow's decrease is exactly what the orgs are credited, and
// that what stays in escrow is the stakes, the unpaid rewards and the carry.
func (s *settlement) balance() error {
	var paid, staked int64
	for _, d := range s.deltas {
		paid += d
	}
	for _, m := range s.members {
		staked += m.Stake
	}
	want := staked + s.st.RewardLeft + s.st.Carry + s.st.Forfeit
	if s.st.Done {
		want = 0
	}
	if s.escrowed-paid != want {
		return ledgerutil.Refuse(ledgerutil.Internal, "the escrow of %d less %d paid leaves %d, but %d is held", s.escrowed, paid, s.escrowed-paid, want)
	}
	s.st.Escrow = want
	return nil
}

// apply writes the changed participants, the credits, the task's state and the result.
func (s *settlement) apply(ctx contractapi.TransactionContextInterface) error {
	slices.Sort(s.changed)
	for _, i := range slices.Compact(s.changed) {
		if err := saveMember(ctx, s.t.ID, s.members[i]); err != nil {
			return err
		}
	}
	if err := pay(ctx, s.deltas); err != nil {
		return ledgerutil.Context(err, fmt.Sprintf("settling round %d", s.view.round))
	}
	s.st.SettledRound = s.view.round
	if err := saveState(ctx, s.st); err != nil {
		return err
	}
	rk, err := roundKey(ctx, s.t.ID, s.view.round)
	if err != nil {
		return err
	}
	raw, err := ledgerutil.PutJSON(ctx, rk, s.res)
	if err != nil {
		return err
	}
	event := "RoundFinalized"
	if s.res.Status == Closed {
		event = "RoundClosed"
	}
	return ctx.GetStub().SetEvent(event, raw)
}

// pay credits each org its (non-negative) total, once, in MSP ID order: a transaction
// does not read its own writes back, so two moves on one account would lose one.
func pay(ctx contractapi.TransactionContextInterface, deltas map[string]int64) error {
	names := make([]string, 0, len(deltas))
	for msp, d := range deltas {
		if d != 0 {
			names = append(names, msp)
		}
	}
	slices.Sort(names)
	for _, msp := range names {
		if err := token.Move(ctx, msp, deltas[msp]); err != nil {
			return err
		}
	}
	return nil
}
