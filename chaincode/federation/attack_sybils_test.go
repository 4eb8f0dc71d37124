package federation

import (
	"testing"
	"time"

	"github.com/fabricml/fabricml/chaincode/internal/fakeledger"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

// Finding 3: an org enrolls as many identities as its CA signs. A task takes at most
// maxPerOrg of them (1 unless its terms say more), and sybils below the cap earn their
// org no more than one identity would: rewards are split per org.
func TestAnOrgEnrollsAtMostMaxPerOrgIdentities(t *testing.T) {
	w := newWorld(t)
	w.must(admin(1), w.create(terms()))
	w.must(t1, w.join)
	w.refuse(fakeledger.R("a second identity of org1", t1b, w.join, ledgerutil.Exhausted))
	w2 := newWorld(t)
	w2.must(admin(1), w2.create(terms(func(r *TaskRequest) { r.MaxPerOrg = 2 })))
	w2.must(t1, w2.join)
	w2.must(t1b, w2.join)
	w2.refuse(fakeledger.R("a third identity of org1", trainer(1, "trainer3"), w2.join, ledgerutil.Exhausted))
}

func TestRewardsArePerOrganizationHoweverManyIdentitiesItEnrolls(t *testing.T) {
	w := running(t, terms(func(r *TaskRequest) { r.MaxPerOrg = 2 }), t1, t1b, t2, t3)
	for i, tr := range []fakeledger.Identity{t1, t1b, t2, t3} {
		w.must(tr, w.commit(1, d(string(rune('c'+i)))))
	}
	same := assessment{digest: "9", scores: scoresOf(700, t1, t1b, t2, t3)}
	for org := 1; org <= 3; org++ {
		w.must(admin(org), w.post(1, same))
	}
	w.must(t2, w.settle(1))
	r := w.result(1)
	if r.Rewards[key(t1)]+r.Rewards[key(t1b)] != 30 || r.Rewards[key(t2)] != 30 || r.Rewards[key(t3)] != 30 {
		t.Fatalf("each org must get a third of the 90, whatever its identities: %v", r.Rewards)
	}
	// One post per org: the sybil's post is org1's post again.
	w2 := running(t, terms(func(r *TaskRequest) { r.MaxPerOrg = 2 }), t1, t1b, t2, t3)
	for i, tr := range []fakeledger.Identity{t1, t1b, t2, t3} {
		w2.must(tr, w2.commit(1, d(string(rune('c'+i)))))
	}
	w2.must(t1, w2.post(1, same))
	other := assessment{digest: "8", scores: same.scores}
	w2.refuse(fakeledger.R("org1's second identity posts again", t1b, w2.post(1, other), ledgerutil.Conflict))
}

// The chaincode cannot see update bytes, but it can see digests: a digest committed in
// this task before, by anyone in any round, is a replay and refused.
func TestAReplayedDigestIsRefusedInTheSameRoundAndLater(t *testing.T) {
	w := running(t, terms(func(r *TaskRequest) { r.MaxPerOrg = 2 }), t1, t1b, t2, t3)
	w.must(t1, w.commit(1, d("1")))
	w.refuse(
		fakeledger.R("a sybil commits its org's digest", t1b, w.commit(1, d("1")), ledgerutil.Conflict),
		fakeledger.R("another org commits org1's digest", t2, w.commit(1, d("1")), ledgerutil.Conflict),
	)
	w.must(t1b, w.commit(1, d("2")))
	w.must(t2, w.commit(1, d("3")))
	w.must(t3, w.commit(1, d("4")))
	all := assessment{digest: "9", scores: scoresOf(500, t1, t1b, t2, t3)}
	for org := 1; org <= 3; org++ {
		w.must(admin(org), w.post(1, all))
	}
	w.must(t1, w.settle(1))
	w.refuse(fakeledger.R("round 1's update again in round 2", t1, w.commit(2, d("1")), ledgerutil.Conflict))
	// Two identical commitments proposed at once: the second is invalidated at commit.
	out := w.stub.Block(fakeledger.P(t2, w.commit(2, d("5"))), fakeledger.P(t3, w.commit(2, d("5"))))
	if out[0].Code != fakeledger.Valid || out[1].Code != fakeledger.MVCCReadConflict {
		t.Fatalf("of two identical commitments in one block, only the first may stand: %+v", out)
	}
	w.conserved()
}

// Finding 4: the sample count is self-reported. It is bounded (1 to 2^22, so 256
// participants stay within the agents' fixed-point weight bound), and it is advisory:
// the contract pays by agreed scores per org, never by samples.
func TestSampleCountsAreBoundedAndDecideNothing(t *testing.T) {
	w := running(t, terms(), t1, t2, t3)
	w.refuse(
		fakeledger.R("zero samples", t1, w.commitN(1, d("1"), 0), ledgerutil.Invalid),
		fakeledger.R("negative samples", t1, w.commitN(1, d("1"), -5), ledgerutil.Invalid),
		fakeledger.R("2^30 samples", t1, w.commitN(1, d("1"), 1<<30), ledgerutil.Invalid),
		fakeledger.R("2^62 samples", t1, w.commitN(1, d("1"), 1<<62), ledgerutil.Invalid),
	)
	w.must(t1, w.commitN(1, d("1"), MaxSamples))
	w.must(t2, w.commitN(1, d("2"), 1))
	w.must(t3, w.commitN(1, d("3"), 1))
	w.later(time.Second)
	same := assessment{digest: "9", scores: scoresOf(500, t1, t2, t3)}
	w.must(admin(2), w.post(1, same))
	w.must(admin(3), w.post(1, same))
	w.must(t3, w.settle(1))
	if r := w.result(1); r.Rewards[key(t1)] != r.Rewards[key(t2)] {
		t.Fatalf("the sample count must not weigh the reward: %v", r.Rewards)
	}
}
