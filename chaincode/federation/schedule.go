package federation

import (
	"time"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

// roundTimes are one round's deadlines. Each derives from ledger records only (the
// start, and each round's commitments), never from who called when, so every
// transaction of a round computes the same ones without reading another's writes.
type roundTimes struct {
	Commit    time.Time // commitments are accepted until then
	Complete  bool      // every participant of the round committed
	Close     time.Time // the commitments closed: at the last one if complete, else Commit + margin
	Reveal    time.Time // an update may be reported missing only after Reveal + margin
	Aggregate time.Time // assessments are accepted until then; without a quorum the round closes after it
}

// afterClose: the reveal window, the aggregate window and the next round's commit phase
// follow a round's close, each with a margin so that it runs its full length.
func (t *Task) afterClose(close time.Time) (reveal, aggregate, nextCommit time.Time) {
	reveal = close.Add(seconds(t.RevealSeconds))
	aggregate = reveal.Add(t.margin()).Add(seconds(t.AggregateSeconds))
	nextCommit = aggregate.Add(t.margin()).Add(seconds(t.CommitSeconds))
	return reveal, aggregate, nextCommit
}

// roundView is one round as the ledger holds it: its participants, their commitments
// and its deadlines.
type roundView struct {
	round   int
	active  []Participant
	commits map[string]*Commitment
	times   roundTimes
}

// committers are the round's participants that committed, in joining order.
func (v *roundView) committers() []Participant {
	out := []Participant{}
	for _, p := range v.active {
		if v.commits[p.Key()] != nil {
			out = append(out, p)
		}
	}
	return out
}

// closed: no commitment can be added any more.
func (v *roundView) closed(t *Task, now time.Time) bool {
	return v.times.Complete || t.passed(now, v.times.Commit)
}

// viewRound reads a round's commitments (one point read per participant, so a late
// commitment of someone else never conflicts) and derives its deadlines; prevClose is
// the previous round's close (unused for round 1, which starts with the task).
func viewRound(ctx contractapi.TransactionContextInterface, t *Task, members []Participant, round int, prevClose time.Time) (*roundView, error) {
	v := &roundView{round: round, active: activeIn(members, round), commits: map[string]*Commitment{}}
	if round == 1 {
		started, err := parseStamp(t.StartedAt)
		if err != nil {
			return nil, err
		}
		v.times.Commit = started.Add(seconds(t.CommitSeconds))
	} else {
		_, _, v.times.Commit = t.afterClose(prevClose)
	}
	last := time.Time{}
	for _, p := range v.active {
		k, err := commitKey(ctx, t.ID, round, p)
		if err != nil {
			return nil, err
		}
		var cm Commitment
		found, err := ledgerutil.GetJSON(ctx, k, &cm)
		if err != nil {
			return nil, err
		}
		if found {
			v.commits[p.Key()] = &cm
			if at, err := parseStamp(cm.CommittedAt); err != nil {
				return nil, err
			} else if at.After(last) {
				last = at
			}
		}
	}
	v.times.Complete = len(v.commits) == len(v.active)
	v.times.Close = v.times.Commit.Add(t.margin())
	if v.times.Complete {
		v.times.Close = last
	}
	v.times.Reveal, v.times.Aggregate, _ = t.afterClose(v.times.Close)
	return v, nil
}

// closeBefore is the close of the round before `round`, as its settlement recorded it
// (zero for round 1); the step that needs it requires that settlement.
func closeBefore(ctx contractapi.TransactionContextInterface, t *Task, round int, why string) (time.Time, error) {
	if round == 1 {
		return time.Time{}, nil
	}
	prev, err := settled(ctx, t.ID, round-1, why)
	if err != nil {
		return time.Time{}, err
	}
	return parseStamp(prev.CommitClose)
}

// settledView is a round whose predecessor is settled, so its participants are final:
// what an assessment, a settlement and a query look at.
func settledView(ctx contractapi.TransactionContextInterface, t *Task, members []Participant, round int, why string) (*roundView, error) {
	prevClose, err := closeBefore(ctx, t, round, why)
	if err != nil {
		return nil, err
	}
	return viewRound(ctx, t, members, round, prevClose)
}
