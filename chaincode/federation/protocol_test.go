package federation

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/fabricml/fabricml/chaincode/internal/fakeledger"
)

// The round of protocol v2 on the critical path is two blocks: every participant's
// commitment, then every org's assessment. The settlement of round r rides in the same
// block as round r+1's commitments (it is placed first, so it would invalidate them if
// they read anything it writes). Every transaction of every block is valid, three
// rounds running, and the task ends with every token where it belongs.
func TestARoundIsTwoConflictFreeBlocksAndSettlesOffTheCriticalPath(t *testing.T) {
	w := running(t, terms(), t1, t2, t3)
	blocks := 0
	honest := func(round int) assessment {
		return assessment{digest: fmt.Sprint(round), scores: scoresOf(500, t1, t2, t3)}
	}
	for round := 1; round <= 3; round++ {
		commits := []fakeledger.Proposal{}
		if round > 1 {
			commits = append(commits, fakeledger.P(t2, w.settle(round-1)))
		}
		for i, tr := range []fakeledger.Identity{t1, t2, t3} {
			commits = append(commits, fakeledger.P(tr, w.commit(round, d(fmt.Sprintf("%x", 3*round+i)))))
		}
		w.block(commits...)
		blocks++
		if rs := w.state(round); rs.Phase != PhaseAggregate || !rs.CommitsClosed || len(rs.Committed) != 3 {
			t.Fatalf("round %d after its commitments: %+v", round, rs)
		}
		w.later(time.Second) // the agents fetch the published updates and aggregate
		w.block(fakeledger.P(admin(1), w.post(round, honest(round))), fakeledger.P(t2, w.post(round, honest(round))),
			fakeledger.P(admin(3), w.post(round, honest(round))))
		blocks++
		if rs := w.state(round); rs.Phase != PhaseSettle || rs.AgreedDigest != d(fmt.Sprint(round)) {
			t.Fatalf("round %d after its assessments: %+v", round, rs)
		}
		w.later(time.Second) // training the next round
	}
	w.must(t3, w.settle(3))
	if blocks != 6 {
		t.Fatalf("%d blocks on the critical path of 3 rounds, want 6", blocks)
	}
	for round := 1; round <= 3; round++ {
		r := w.result(round)
		if r.Status != Finalized || r.AggregateDigest != d(fmt.Sprint(round)) || len(r.Agreeing) != 3 || r.Rewards[key(t1)] != 30 {
			t.Fatalf("round %d: %+v", round, r)
		}
	}
	tk := w.task()
	if tk.Status != StatusDone || tk.Escrow != 0 || !w.result(3).TaskDone {
		t.Fatalf("the task should be done with an empty escrow: %+v", tk)
	}
	// Each org earned 3 x 30 and got its stake back; org1 also paid the 270 escrowed.
	if got := w.balances(); got != [4]int64{funds + 90 - 270, funds + 90, funds + 90, funds} {
		t.Fatalf("balances %v", got)
	}
}

// With four orgs the quorum is three: two posts do not decide, and a late fourth post
// after the quorum neither changes the agreed assessment nor conflicts with the next
// round's commitments (they never read the posts of the round before).
func TestALatePostNeitherChangesTheQuorumNorConflictsWithTheNextRound(t *testing.T) {
	w := running(t, terms(), t1, t2, t3, t4)
	all := []fakeledger.Identity{t1, t2, t3, t4}
	for i, tr := range all {
		w.must(tr, w.commit(1, d(fmt.Sprint(i))))
	}
	honest := assessment{digest: "9", scores: scoresOf(400, all...)}
	w.must(admin(1), w.post(1, honest))
	w.must(admin(2), w.post(1, honest))
	if rs := w.state(1); rs.AgreedDigest != "" || rs.QuorumSize != 3 || rs.Settleable {
		t.Fatalf("two of four orgs must not decide: %+v", rs)
	}
	w.must(admin(3), w.post(1, honest))
	late := assessment{digest: "8", scores: scoresOf(1000, all...)}
	w.block(fakeledger.P(admin(4), w.post(1, late)), fakeledger.P(t1, w.commit(2, d("a"))), fakeledger.P(t2, w.commit(2, d("b"))),
		fakeledger.P(t3, w.commit(2, d("c"))), fakeledger.P(t4, w.commit(2, d("e"))))
	// Settle reads the round's posts: in the late post's block it would be invalid (a
	// phantom read) and simply retried; it is off the critical path.
	w.must(t3, w.settle(1))
	r := w.result(1)
	if r.AggregateDigest != d("9") || !slices.Equal(r.Disagreeing, []string{msp(4)}) || r.Rewards[key(t1)] != 22 || r.Rewards[key(t4)] != 24 { // 90 = 3 x 22 + 24: the remainder goes to the last org
		t.Fatalf("the late, different post changed the outcome: %+v", r)
	}
}

// A commitment endorsed in time but held back by its submitter can land only before the
// first assessment of its round: once an org posted (having read the round's commitments
// as closed), a commitment that read that post's key as absent is invalidated. And an
// assessment held back until after the settlement is invalidated the same way.
func TestAHeldBackCommitmentCannotLandAfterTheRoundWasAssessed(t *testing.T) {
	w := running(t, terms(), t1, t2, t3)
	endorsed := w.stub.Time.Add(50 * time.Second) // before the commit deadline (60 s)
	w.must(t1, w.commit(1, d("1")))
	w.must(t2, w.commit(1, d("2")))
	w.later(60*time.Second + w.margin() + time.Second) // the commit phase closed for certain: t3 missed it
	rs := w.state(1)
	if !rs.CommitsClosed || len(rs.Committed) != 2 {
		t.Fatalf("round 1 should be closed by time with two commitments: %+v", rs)
	}
	honest := assessment{digest: "9", scores: scoresOf(500, t1, t2)}
	outcomes := w.stub.Block(fakeledger.P(admin(1), w.post(1, honest)), fakeledger.Proposal{Who: t3, Call: w.commit(1, d("3")), At: endorsed})
	if outcomes[0].Code != fakeledger.Valid || outcomes[1].Code != fakeledger.MVCCReadConflict {
		t.Fatalf("the held-back commitment must be invalid after the post: %+v", outcomes)
	}
	w.conserved()
	w.must(admin(2), w.post(1, honest))
	postedAt := w.stub.Time
	outcomes = w.stub.Block(fakeledger.P(t1, w.settle(1)), fakeledger.Proposal{Who: admin(3), Call: w.post(1, honest), At: postedAt})
	if outcomes[0].Code != fakeledger.Valid || outcomes[1].Code != fakeledger.MVCCReadConflict {
		t.Fatalf("an assessment held back past the settlement must be invalid: %+v", outcomes)
	}
	r := w.result(1)
	if r.Status != Finalized || r.Penalized[key(t3)] != 10 || len(r.Agreeing) != 2 {
		t.Fatalf("round 1: %+v", r)
	}
}

func (w *world) margin() time.Duration { return 2 * defaultSkewSeconds * time.Second }
