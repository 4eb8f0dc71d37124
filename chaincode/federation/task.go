package federation

import (
	"slices"

	"github.com/fabricml/fabricml/chaincode/ledgerutil"
	"github.com/fabricml/fabricml/chaincode/token"
)

const (
	StatusEnrolling = "enrolling"
	StatusRunning   = "running"
	StatusDone      = "done"
	StatusCancelled = "cancelled" // by its creator before it started
	StatusClosed    = "closed"    // enrollment ended without a start

	PhaseCommit    = "COMMIT"    // participants train and commit their update's digest
	PhaseAggregate = "AGGREGATE" // updates are published off chain; each org posts its assessment
	PhaseSettle    = "SETTLE"    // a quorum agreed or a deadline passed: Settle may be called

	OutSlashed = "slashed" // flagged or withheld its update: lost its stake
	OutDropped = "dropped" // missed two commit phases in a row: the rest of its stake refunded
)

const (
	// MaxScore bounds a score in an assessment (the agents score 0 to 1000).
	MaxScore = 1000
	// MaxSamples bounds a commitment's (advisory) sample count: 256 participants of
	// 2^22 samples stay within the agents' fixed-point weight bound of 2^30.
	MaxSamples = 1 << 22

	maxParticipants      = 256
	defaultMaxPerOrg     = 1
	defaultSkewSeconds   = 30
	defaultEnrollSeconds = 7 * 24 * 3600
	maxPhaseSeconds      = 7 * 24 * 3600
	missPenaltyDivisor   = 10 // a missed commit phase costs a tenth of the stake
	missesToDrop         = 2  // in a row
)

// TaskRequest is what an org admin submits to open a federated task. Fields left 0
// take their default: maxPerOrg 1, enrollSeconds 7 days, clockSkewSeconds 30.
type TaskRequest struct {
	ID               string `json:"id"`
	InitialModel     string `json:"initialModel"`
	Rounds           int    `json:"rounds"`
	MinParticipants  int    `json:"minParticipants"`
	MaxPerOrg        int    `json:"maxPerOrg"`
	Stake            int64  `json:"stake"`
	RewardPerRound   int64  `json:"rewardPerRound"`
	EnrollSeconds    int64  `json:"enrollSeconds"`
	CommitSeconds    int64  `json:"commitSeconds"`
	RevealSeconds    int64  `json:"revealSeconds"`
	AggregateSeconds int64  `json:"aggregateSeconds"`
	ClockSkewSeconds int64  `json:"clockSkewSeconds"`
	Rule             string `json:"rule"`
}

// Participant is one training identity of a member org and what it still has at stake.
type Participant struct {
	MSPID    string `json:"mspId"`
	Subject  string `json:"subject"`
	Stake    int64  `json:"stake"`
	Slashed  bool   `json:"slashed"`
	Out      string `json:"out"`      // "", OutSlashed or OutDropped
	OutRound int    `json:"outRound"` // the round whose settlement took it out
	Missed   int    `json:"missed"`   // commit phases missed in a row
}

// Key names a participant in maps and keys.
func (p Participant) Key() string { return p.MSPID + "/" + p.Subject }

// activeIn: a participant takes part in every round up to the one whose settlement
// took it out, so a round's set of participants never changes once it began.
func (p Participant) activeIn(round int) bool { return p.Out == "" || p.OutRound >= round }

// Task is a federated task's terms and participants. It is written only before the
// task starts (and when it is cancelled or closed unstarted): the transactions of a
// round read it without ever conflicting with one another.
type Task struct {
	TaskRequest
	Creator      string        `json:"creator"`
	Status       string        `json:"status"`
	CreatedAt    string        `json:"createdAt"`
	StartedAt    string        `json:"startedAt"`
	Participants []Participant `json:"participants"` // as they joined; the members' records say what became of them
}

func (r *TaskRequest) withDefaults() {
	if r.MaxPerOrg == 0 {
		r.MaxPerOrg = defaultMaxPerOrg
	}
	if r.EnrollSeconds == 0 {
		r.EnrollSeconds = defaultEnrollSeconds
	}
	if r.ClockSkewSeconds == 0 {
		r.ClockSkewSeconds = defaultSkewSeconds
	}
}

// validate checks a task request (after defaults); every refusal is INVALID. Stake and
// reward are bounded by the token cap, and so is the escrow of every round's reward.
func (r *TaskRequest) validate() error {
	if err := ledgerutil.Check("task id", r.ID, ledgerutil.LedgerIDPattern); err != nil {
		return err
	}
	for _, b := range []struct {
		name          string
		value, lo, hi int64
	}{
		{"rounds", int64(r.Rounds), 1, 1000},
		{"minParticipants", int64(r.MinParticipants), 2, maxParticipants},
		{"maxPerOrg", int64(r.MaxPerOrg), 1, maxParticipants},
		{"stake", r.Stake, 0, token.MaxAmount},
		{"rewardPerRound", r.RewardPerRound, 0, token.MaxAmount},
		{"enrollSeconds", r.EnrollSeconds, 60, 30 * 24 * 3600},
		{"commitSeconds", r.CommitSeconds, 1, maxPhaseSeconds},
		{"revealSeconds", r.RevealSeconds, 1, maxPhaseSeconds},
		{"aggregateSeconds", r.AggregateSeconds, 1, maxPhaseSeconds},
		{"clockSkewSeconds", r.ClockSkewSeconds, 1, 300},
	} {
		if b.value < b.lo || b.value > b.hi {
			return ledgerutil.Refuse(ledgerutil.Invalid, "%s must be %d to %d, got %d", b.name, b.lo, b.hi, b.value)
		}
	}
	// rounds <= 1000 < 2^10 and reward <= 2^50: the product fits an int64 before the check.
	if escrow := r.RewardPerRound * int64(r.Rounds); escrow > token.MaxAmount {
		return ledgerutil.Refuse(ledgerutil.Invalid, "rewardPerRound x rounds = %d exceeds the token cap %d", escrow, token.MaxAmount)
	}
	return ledgerutil.Check("rule", r.Rule, ledgerutil.RulePattern)
}

func (t *Task) participant(msp, subject string) (int, bool) {
	i := slices.IndexFunc(t.Participants, func(p Participant) bool { return p.MSPID == msp && p.Subject == subject })
	return i, i >= 0
}

// orgs are the distinct organizations of these participants, sorted.
func orgs(ps []Participant) []string {
	out := []string{}
	for _, p := range ps {
		if !slices.Contains(out, p.MSPID) {
			out = append(out, p.MSPID)
		}
	}
	slices.Sort(out)
	return out
}

// activeIn lists the participants of a round, in joining order.
func activeIn(members []Participant, round int) []Participant {
	out := []Participant{}
	for _, p := range members {
		if p.activeIn(round) {
			out = append(out, p)
		}
	}
	return out
}

func countOf(ps []Participant, msp string) int {
	n := 0
	for _, p := range ps {
		if p.MSPID == msp {
			n++
		}
	}
	return n
}
