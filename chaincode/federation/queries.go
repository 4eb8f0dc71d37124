package federation

import (
	"maps"
	"slices"
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

// TaskView is a task as a reader sees it: its terms, its participants' records, its
// escrow and the phase of its next round to settle (at the query's time); once it is
// done, round is the last round settled.
type TaskView struct {
	Task
	Round         int       `json:"round"`
	Phase         string    `json:"phase"`
	PhaseDeadline string    `json:"phaseDeadline"`
	Escrow        int64     `json:"escrow"`
	State         TaskState `json:"state"`
}

// RoundState is where one round stands: what an agent reads to know what to do next.
type RoundState struct {
	TaskID            string   `json:"taskId"`
	Round             int      `json:"round"`
	Phase             string   `json:"phase"` // COMMIT, AGGREGATE, SETTLE or SETTLED
	Participants      []string `json:"participants"`
	Committed         []string `json:"committed"`
	CommitsClosed     bool     `json:"commitsClosed"`
	Posted            []string `json:"posted"`
	QuorumSize        int      `json:"quorumSize"`
	AgreedDigest      string   `json:"agreedDigest"` // set once a quorum posted the same assessment
	CommitDeadline    string   `json:"commitDeadline"`
	CommitClose       string   `json:"commitClose"` // set once the commitments closed
	RevealDeadline    string   `json:"revealDeadline"`
	AggregateDeadline string   `json:"aggregateDeadline"`
	Settleable        bool     `json:"settleable"`
}

// GetTask returns a task with its participants' records and the phase of its next round.
func (c *Contract) GetTask(ctx contractapi.TransactionContextInterface, id string) (*TaskView, error) {
	t, _, err := c.load(ctx, id)
	if err != nil {
		return nil, err
	}
	st, err := loadState(ctx, id)
	if err != nil {
		return nil, err
	}
	ms, err := members(ctx, t)
	if err != nil {
		return nil, err
	}
	view := &TaskView{Task: *t, Escrow: st.Escrow, State: *st}
	view.Participants = ms
	if st.Done && t.Status == StatusRunning {
		view.Status, view.Round = StatusDone, st.SettledRound // the last round played
	}
	if view.Status != StatusRunning {
		return view, nil
	}
	view.Round = st.SettledRound + 1
	rs, err := c.GetRoundState(ctx, id, view.Round)
	if err != nil {
		return nil, err
	}
	view.Phase = rs.Phase
	switch rs.Phase {
	case PhaseCommit:
		view.PhaseDeadline = rs.CommitDeadline
	case PhaseAggregate:
		view.PhaseDeadline = rs.AggregateDeadline
	}
	return view, nil
}

// GetRoundState says where a round stands at the query's time; a round after the next
// one to settle is refused (WRONG_PHASE): its participants are not known yet.
func (c *Contract) GetRoundState(ctx contractapi.TransactionContextInterface, id string, round int) (*RoundState, error) {
	t, _, err := c.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if t.Status != StatusRunning && t.Status != StatusDone {
		return nil, ledgerutil.Refuse(ledgerutil.WrongPhase, "task %s is %s", id, t.Status)
	}
	if round < 1 || round > t.Rounds {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "round must be 1 to %d, got %d", t.Rounds, round)
	}
	ms, err := members(ctx, t)
	if err != nil {
		return nil, err
	}
	if r, found, err := roundResult(ctx, id, round); err != nil || found {
		if err != nil {
			return nil, err
		}
		return settledState(t, ms, r), nil
	}
	now, err := txTime(ctx)
	if err != nil {
		return nil, err
	}
	v, err := settledView(ctx, t, ms, round, "its participants are known only then")
	if err != nil {
		return nil, err
	}
	return c.openState(ctx, t, v, now)
}

func settledState(t *Task, ms []Participant, r *RoundResult) *RoundState {
	return &RoundState{TaskID: t.ID, Round: r.Round, Phase: "SETTLED", Participants: keysOf(activeIn(ms, r.Round)), Committed: []string{},
		CommitsClosed: true, Posted: list(slices.Concat(r.Agreeing, r.Disagreeing)), AgreedDigest: r.AggregateDigest, CommitClose: r.CommitClose}
}

func (c *Contract) openState(ctx contractapi.TransactionContextInterface, t *Task, v *roundView, now time.Time) (*RoundState, error) {
	posts, err := c.aggregates(ctx, t.ID, v.round)
	if err != nil {
		return nil, err
	}
	q := quorum(posts, orgs(v.active))
	rs := &RoundState{TaskID: t.ID, Round: v.round, Participants: keysOf(v.active), Committed: list(slices.Sorted(maps.Keys(v.commits))),
		CommitsClosed: v.closed(t, now), Posted: list(slices.Concat(q.agreeing, q.disagreeing)), QuorumSize: quorumSize(orgs(v.active)),
		CommitDeadline: stamp(v.times.Commit)}
	if q.agreed != nil {
		rs.AgreedDigest = q.agreed.Digest
	}
	if rs.CommitsClosed {
		rs.CommitClose, rs.RevealDeadline, rs.AggregateDeadline = stamp(v.times.Close), stamp(v.times.Reveal), stamp(v.times.Aggregate)
	}
	_, err = c.decide(ctx, t, v, now)
	rs.Settleable = err == nil
	switch {
	case !rs.CommitsClosed:
		rs.Phase = PhaseCommit
	case rs.Settleable:
		rs.Phase = PhaseSettle
	default:
		rs.Phase = PhaseAggregate
	}
	return rs, nil
}

// list is never nil: the contract API's schema refuses a JSON null where a list is declared.
func list(names []string) []string {
	if names == nil {
		return []string{}
	}
	return names
}

func keysOf(ps []Participant) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.Key())
	}
	return out
}

// GetRound returns how a round was settled.
func (c *Contract) GetRound(ctx contractapi.TransactionContextInterface, id string, round int) (*RoundResult, error) {
	r, found, err := roundResult(ctx, id, round)
	if err == nil && !found {
		err = ledgerutil.Refuse(ledgerutil.NotFound, "round %d of task %s is not settled", round, id)
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Commitments lists a round's commitments, by participant.
func (c *Contract) Commitments(ctx contractapi.TransactionContextInterface, id string, round int) ([]*Commitment, error) {
	return ledgerutil.ListRecords[*Commitment](ctx, commitKeyType, []string{id, roundPart(round)}, "listing "+commitKeyType)
}

// Aggregates lists the assessments posted for a round, by MSP ID.
func (c *Contract) Aggregates(ctx contractapi.TransactionContextInterface, id string, round int) ([]AggregatePost, error) {
	return c.aggregates(ctx, id, round)
}

func (c *Contract) aggregates(ctx contractapi.TransactionContextInterface, id string, round int) ([]AggregatePost, error) {
	return ledgerutil.ListRecords[AggregatePost](ctx, aggregateKeyType, []string{id, roundPart(round)}, "listing "+aggregateKeyType)
}
