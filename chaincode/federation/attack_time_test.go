package federation

import (
	"testing"
	"time"

	"github.com/fabricml/fabricml/chaincode/internal/fakeledger"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

// lie sets the proposal timestamp an org chooses while every honest endorser's clock
// stays at the true time.
func (w *world) lie(proposed time.Time) {
	w.stub.Clock, w.stub.Time = w.stub.Time, proposed
}

// honestClock ends the lie: the proposal time is the true time again.
func (w *world) honestClock() {
	w.stub.Time, w.stub.Clock = w.stub.Clock, time.Time{}
}

// Finding 2: deadlines were compared with the proposal timestamp, which the client
// chooses: org1's sybils revealed, then it advanced with a timestamp past the deadline
// 2 s into the reveal phase, and the honest were slashed for not revealing. Now every
// endorser refuses a timestamp more than the skew (30 s) from its own clock, and a
// window ends by time only 2 x skew after its deadline: neither a far lie nor a lie
// within the skew ends the reveal window early, and the honest participant keeps its
// stake until the window ran its full length.
func TestAnOrgCannotEndTheRevealWindowEarlyByLyingAboutTime(t *testing.T) {
	w := committedRound(t, terms())
	close := w.stub.Time // everyone committed: the reveal window (60 s) starts here
	w.later(2 * time.Second)
	missing := assessment{digest: "9", scores: scoresOf(500, t1, t2), missing: []string{key(t3)}}
	w.lie(close.Add(60*time.Second + w.margin() + time.Second)) // past the window, for certain, by its clock
	w.refuse(
		fakeledger.R("reporting t3 missing with a timestamp past the window", admin(1), w.post(1, missing), ledgerutil.Invalid),
		fakeledger.R("settling with a timestamp past the aggregate deadline", admin(1), w.settle(1), ledgerutil.Invalid),
	)
	w.honestClock()
	w.lie(w.stub.Time.Add(29 * time.Second)) // within the skew: accepted as a time, but not past the margin
	w.refuse(fakeledger.R("reporting t3 missing 31 s into the window", admin(1), w.post(1, missing), ledgerutil.WrongPhase))
	w.honestClock()
	// t3 publishes in time; the honest orgs assess it; nobody is slashed.
	honest := assessment{digest: "9", scores: scoresOf(500, t1, t2, t3)}
	w.must(admin(2), w.post(1, honest))
	w.must(admin(3), w.post(1, honest))
	w.must(t2, w.settle(1))
	if r := w.result(1); r.Status != Finalized || len(r.Slashed) != 0 || r.Rewards[key(t3)] != 30 {
		t.Fatalf("the honest participant must be paid, not slashed: %+v", r)
	}
}

// The same holds for the commit phase: a commitment backdated into the phase after it
// closed for every honest clock, and a commitment proposed from a clock far behind, are
// refused; a late committer cannot see the others' published updates and then commit.
func TestABackdatedCommitmentIsRefused(t *testing.T) {
	w := running(t, terms(), t1, t2, t3)
	w.must(t1, w.commit(1, d("1")))
	w.must(t2, w.commit(1, d("2")))
	deadline := w.stub.Time.Add(60 * time.Second)
	w.later(60*time.Second + w.margin() + time.Second) // the commitments closed: t1 and t2 publish
	w.lie(deadline.Add(-time.Second))
	w.refuse(fakeledger.R("a commitment backdated into the commit phase", t3, w.commit(1, d("3")), ledgerutil.Invalid))
	w.honestClock()
	w.refuse(fakeledger.R("a commitment after the phase", t3, w.commit(1, d("3")), ledgerutil.WrongPhase))
}

// Finding 2, the attack as filed: an org calls the round's time-driven transition with
// a proposal timestamp past the deadline while it is 2 s into the reveal phase. The
// transition is Settle now; it is refused, and so is an honest-clock Settle before the
// deadlines passed for certain.
func TestSettlingWithATimestampPastTheDeadlineTwoSecondsIntoRevealIsRefused(t *testing.T) {
	w := committedRound(t, terms())
	w.later(2 * time.Second)
	w.lie(w.stub.Time.Add(10 * time.Minute))
	w.refuse(fakeledger.R("Settle with a timestamp 10 min ahead", t1, w.settle(1), ledgerutil.Invalid))
	w.honestClock()
	w.refuse(fakeledger.R("Settle 2 s into the reveal window", t1, w.settle(1), ledgerutil.WrongPhase))
}

// A client whose clock is wrong learns it from the refusal, whatever it calls.
func TestEveryTransactionChecksItsTimestamp(t *testing.T) {
	w := newWorld(t)
	w.lie(w.stub.Time.Add(-time.Hour))
	w.refuse(fakeledger.R("a task created with a clock an hour behind", admin(1), w.create(terms()), ledgerutil.Invalid))
	w.honestClock()
	w.must(admin(1), w.create(terms()))
	w.lie(w.stub.Time.Add(time.Hour))
	w.refuse(
		fakeledger.R("joining", t1, w.join, ledgerutil.Invalid),
		fakeledger.R("starting", admin(1), w.start, ledgerutil.Invalid),
		fakeledger.R("cancelling", admin(1), w.cancel, ledgerutil.Invalid),
		fakeledger.R("closing", admin(1), w.close, ledgerutil.Invalid),
	)
}
