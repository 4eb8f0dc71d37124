// Package federation coordinates federated training rounds without a trusted server:
// stake, commit, reveal, a quorum on the deterministic aggregate's digest, rewards
// by score and slashing. Time is the transaction's timestamp, never a clock.
package federation

import (
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"
)

const (
	StatusEnrolling = "enrolling"
	StatusRunning   = "running"
	StatusDone      = "done"

	PhaseCommit    = "COMMIT"
	PhaseReveal    = "REVEAL"
	PhaseAggregate = "AGGREGATE"
)

var (
	idPattern   = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	rulePattern = regexp.MustCompile(`^(trust\+)?((nnm|bucket:[0-9]{1,2})\+)?(fedavg|median|trimmed:[0-9]{1,2}|krum:[0-9]{1,2}:[0-9]{1,2}|cc(:[0-9]{1,2})?|fltrust)(\+normbound)?$`)
)

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

func (r *TaskRequest) validate() error {
	if !idPattern.MatchString(r.ID) {
		return fmt.Errorf("task id %q is invalid; allowed: 1-64 letters, digits, '.', '_', '-'", r.ID)
	}
	if r.Rounds < 1 || r.Rounds > 1000 {
		return fmt.Errorf("rounds must be 1 to 1000, got %d", r.Rounds)
	}
	if r.MinParticipants < 2 || r.MinParticipants > 256 {
		return fmt.Errorf("minParticipants must be 2 to 256, got %d", r.MinParticipants)
	}
	if r.Stake < 0 || r.RewardPerRound < 0 {
		return fmt.Errorf("stake and rewardPerRound must not be negative")
	}
	for name, s := range map[string]int64{"commitSeconds": r.CommitSeconds, "revealSeconds": r.RevealSeconds, "aggregateSeconds": r.AggregateSeconds} {
		if s < 1 || s > 7*24*3600 {
			return fmt.Errorf("%s must be 1 to 604800, got %d", name, s)
		}
	}
	if !rulePattern.MatchString(r.Rule) {
		return fmt.Errorf("rule %q is invalid; allowed: fedavg, median, trimmed:<k>, krum:<f>:<m>, each optionally followed by +normbound", r.Rule)
	}
	return nil
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
		return time.Time{}, err
	}
	return ts.AsTime().UTC(), nil
}
