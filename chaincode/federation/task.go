// Package federation coordinates federated training rounds without a trusted server:
// stake, commit, reveal, a quorum on the deterministic aggregate's digest, rewards
// by score and slashing. Time is the transaction's timestamp, never a clock.
package federation

import (
	"slices"
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/fabricml/fabricml/chaincode/ledgerutil"
	"github.com/fabricml/fabricml/chaincode/token"
)

const (
	StatusEnrolling = "enrolling"
	StatusRunning   = "running"
	StatusDone      = "done"

	PhaseCommit    = "COMMIT"
	PhaseReveal    = "REVEAL"
	PhaseAggregate = "AGGREGATE"
)

// MaxScore bounds a participant's score in an aggregate post (the agents score up to 1000).
const MaxScore = 1_000_000

// TaskRequest is what an org admin submits to open a federated task.
type TaskRequest struct {
	ID               string `json:"id"`
	InitialModel     string `json:"initialModel"`
	Rounds           int    `json:"rounds"`
	MinParticipants  int    `json:"minParticipants"`
	Stake            int64  `json:"stake"`
	RewardPerRound   int64  `json:"rewardPerRound"`
	CommitSeconds    int64  `json:"commitSeconds"`
	RevealSeconds    int64  `json:"revealSeconds"`
	AggregateSeconds int64  `json:"aggregateSeconds"`
	Rule             string `json:"rule"`
}

// Participant is one training identity of a member org.
type Participant struct {
	MSPID   string `json:"mspId"`
	Subject string `json:"subject"`
	Slashed bool   `json:"slashed"`
}

// Key names a participant in maps and keys.
func (p Participant) Key() string { return p.MSPID + "/" + p.Subject }

// Task is a federated training task and where it stands.
type Task struct {
	TaskRequest
	Creator       string        `json:"creator"`
	Status        string        `json:"status"`
	Round         int           `json:"round"`
	Phase         string        `json:"phase"`
	PhaseDeadline string        `json:"phaseDeadline"`
	Participants  []Participant `json:"participants"`
	Escrow        int64         `json:"escrow"`
}

// validate checks a task request; every refusal is INVALID. Stake and reward are
// bounded so that the escrow (reward x rounds) cannot overflow into a negative amount.
func (r *TaskRequest) validate() error {
	if err := ledgerutil.Check("task id", r.ID, ledgerutil.LedgerIDPattern); err != nil {
		return err
	}
	for _, b := range []struct {
		name          string
		value, lo, hi int64
	}{
		{"rounds", int64(r.Rounds), 1, 1000},
		{"minParticipants", int64(r.MinParticipants), 2, 256},
		{"stake", r.Stake, 0, token.MaxAmount},
		{"rewardPerRound", r.RewardPerRound, 0, token.MaxAmount},
		{"commitSeconds", r.CommitSeconds, 1, 7 * 24 * 3600},
		{"revealSeconds", r.RevealSeconds, 1, 7 * 24 * 3600},
		{"aggregateSeconds", r.AggregateSeconds, 1, 7 * 24 * 3600},
	} {
		if b.value < b.lo || b.value > b.hi {
			return ledgerutil.Refuse(ledgerutil.Invalid, "%s must be %d to %d, got %d", b.name, b.lo, b.hi, b.value)
		}
	}
	return ledgerutil.Check("rule", r.Rule, ledgerutil.RulePattern)
}

func (t *Task) participant(msp, subject string) (int, bool) {
	i := slices.IndexFunc(t.Participants, func(p Participant) bool { return p.MSPID == msp && p.Subject == subject })
	return i, i >= 0
}

// orgs are the distinct organizations of the active (unslashed) participants.
func (t *Task) orgs() []string {
	out := []string{}
	for _, p := range t.Participants {
		if !p.Slashed && !slices.Contains(out, p.MSPID) {
			out = append(out, p.MSPID)
		}
	}
	slices.Sort(out)
	return out
}

func (t *Task) active() []Participant {
	out := []Participant{}
	for _, p := range t.Participants {
		if !p.Slashed {
			out = append(out, p)
		}
	}
	return out
}

func (t *Task) phaseSeconds(phase string) int64 {
	switch phase {
	case PhaseCommit:
		return t.CommitSeconds
	case PhaseReveal:
		return t.RevealSeconds
	}
	return t.AggregateSeconds
}

func (t *Task) enterPhase(phase string, now time.Time) {
	t.Phase = phase
	t.PhaseDeadline = now.Add(time.Duration(t.phaseSeconds(phase)) * time.Second).UTC().Format(time.RFC3339Nano)
}

func (t *Task) pastDeadline(now time.Time) bool {
	deadline, err := time.Parse(time.RFC3339Nano, t.PhaseDeadline)
	return err == nil && now.After(deadline)
}

func txNow(ctx contractapi.TransactionContextInterface) (time.Time, error) {
	ts, err := ctx.GetStub().GetTxTimestamp()
	if err != nil {
		return time.Time{}, ledgerutil.Context(err, "reading the transaction time")
	}
	return ts.AsTime().UTC(), nil
}
