package federation

import (
	"slices"
	"testing"
	"time"

	"github.com/fabricml/fabricml/chaincode/internal/fakeledger"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

// pastReveal: the reveal window of a round that closed now ran its full length for certain.
func (w *world) pastReveal() { w.later(60*time.Second + w.margin() + time.Second) }

// Finding 5: a participant that committed and never published its update cost others
// a round at no cost to itself. Now the orgs may report it missing, but only once the
// reveal window ran its full length; when a quorum agrees, it loses its stake to those
// who kept to the protocol, and it takes no further part.
func TestAWithholderLosesItsStakeOnlyAfterTheRevealWindowRanItsFullLength(t *testing.T) {
	w := committedRound(t, terms()) // t3 will never publish its update
	withheld := assessment{digest: "9", scores: scoresOf(500, t1, t2), missing: []string{key(t3)}}
	w.refuse(fakeledger.R("reporting t3 missing at once", admin(1), w.post(1, withheld), ledgerutil.WrongPhase))
	w.pastReveal()
	w.must(admin(1), w.post(1, withheld))
	w.must(admin(2), w.post(1, withheld))
	w.must(t1, w.settle(1))
	r := w.result(1)
	if r.Status != Finalized || !slices.Equal(r.Slashed, []string{key(t3)}) || r.Pool != 190 || r.Rewards[key(t1)] != 95 || r.Rewards[key(t2)] != 95 {
		t.Fatalf("the withholder's stake must go to the others: %+v", r)
	}
	w.refuse(fakeledger.R("the withholder commits to round 2", t3, w.commit(2, d("7")), ledgerutil.Forbidden))
}

// The withholder is the creator's own participant and withholds until too few usable
// updates remain (minParticipants 3): the round closes with the model unchanged and the
// task ends, yet the withholder's stake goes to the two who kept to the protocol, not
// back to the creator's org with the unpaid rewards.
func TestWithholdingUntilTooFewRemainStillCostsTheWithholder(t *testing.T) {
	w := committedRound(t, terms(func(r *TaskRequest) { r.MinParticipants = 3 }))
	w.pastReveal()
	withheld := assessment{digest: "9", scores: scoresOf(500, t2, t3), missing: []string{key(t1)}}
	w.must(admin(2), w.post(1, withheld))
	w.must(admin(3), w.post(1, withheld))
	w.must(t2, w.settle(1))
	r := w.result(1)
	if r.Status != Closed || r.AggregateDigest != "" || !slices.Equal(r.Slashed, []string{key(t1)}) || !r.TaskDone {
		t.Fatalf("the round must close (too few usable), slash t1 and end the task: %+v", r)
	}
	// Pool 90 + 100 split between org2 and org3; org1 gets back the 180 rewards of rounds 2 and 3.
	if got := w.balances(); got != [4]int64{funds - 270 - 100 + 180, funds + 95, funds + 95, funds} {
		t.Fatalf("balances %v", got)
	}
}

// A participant that commits nothing in a commit phase that ran its full length loses a
// tenth of its stake; after two such rounds in a row it is dropped (the rest of its
// stake refunded) and the others no longer wait for it.
func TestANonCommitterIsPenalizedAndDroppedAfterTwoMisses(t *testing.T) {
	w := running(t, terms(), t1, t2, t3)
	pastCommit := func() { w.later(60*time.Second + w.margin() + time.Second) }
	two := assessment{digest: "9", scores: scoresOf(500, t1, t2)}
	w.must(t1, w.commit(1, d("1")))
	w.must(t2, w.commit(1, d("2")))
	w.refuse(fakeledger.R("posting while t3 may still commit", admin(1), w.post(1, two), ledgerutil.WrongPhase))
	pastCommit()
	w.must(admin(1), w.post(1, two))
	w.must(admin(2), w.post(1, two))
	w.must(t1, w.settle(1))
	if r := w.result(1); r.Penalized[key(t3)] != 10 || r.Pool != 100 || r.Rewards[key(t1)] != 50 {
		t.Fatalf("round 1: %+v", r)
	}
	w.must(t1, w.commit(2, d("3")))
	w.must(t2, w.commit(2, d("4")))
	w.later(3*60*time.Second + 2*w.margin()) // round 2's commit deadline follows round 1's aggregate deadline
	pastCommit()
	w.must(admin(1), w.post(2, assessment{digest: "8", scores: two.scores}))
	w.must(admin(2), w.post(2, assessment{digest: "8", scores: two.scores}))
	w.must(t2, w.settle(2))
	if r := w.result(2); r.Penalized[key(t3)] != 9 || !slices.Equal(r.Dropped, []string{key(t3)}) {
		t.Fatalf("round 2: %+v", r)
	}
	w.must(t1, w.commit(3, d("5")))
	w.must(t2, w.commit(3, d("6")))
	if rs := w.state(3); !rs.CommitsClosed || len(rs.Participants) != 2 {
		t.Fatalf("round 3 must not wait for the dropped participant: %+v", rs)
	}
	// org3: staked 100, lost 10 and 9, got 81 back.
	if w.balance(3) != funds-19 {
		t.Fatalf("org3 holds %d", w.balance(3))
	}
}
