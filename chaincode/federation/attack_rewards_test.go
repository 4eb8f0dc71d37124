package federation

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/fabricml/fabricml/chaincode/internal/fakeledger"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
	"github.com/fabricml/fabricml/chaincode/token"
)

// committedRound: t1, t2 and t3 committed to round 1 (its commitments closed).
func committedRound(t *testing.T, r TaskRequest) *world {
	t.Helper()
	w := running(t, r, t1, t2, t3)
	for i, tr := range []fakeledger.Identity{t1, t2, t3} {
		w.must(tr, w.commit(1, d(string(rune('c'+i)))))
	}
	return w
}

// Finding 1: the agreed score was the upper median of the agreeing orgs' posts, so with
// two agreeing orgs either one set any score. Now only an assessment a quorum posted
// exactly counts: org1 giving its own participant everything and the others nothing
// is not counted beside org2's honest post, whether org3 is silent (the round closes
// without rewards, and no one is slashed) or posts honestly (org2 and org3 decide).
func TestNeitherOfTwoAgreeingOrgsAloneSetsAScore(t *testing.T) {
	greedy := assessment{digest: "9", scores: map[string]int64{key(t1): MaxScore, key(t2): 0, key(t3): 0}}
	honest := assessment{digest: "9", scores: scoresOf(500, t1, t2, t3)}
	t.Run("the third org is silent", func(t *testing.T) {
		w := committedRound(t, terms())
		w.must(admin(1), w.post(1, greedy))
		w.must(admin(2), w.post(1, honest))
		w.refuse(fakeledger.R("settling without a quorum before the deadline", t1, w.settle(1), ledgerutil.WrongPhase))
		w.later(60*time.Second + w.margin() + 60*time.Second + 2*w.margin() + time.Second)
		w.must(t2, w.settle(1))
		r := w.result(1)
		if r.Status != Closed || len(r.Rewards) != 0 || len(r.Slashed) != 0 || r.Carried != 90 || !slices.Equal(r.Disagreeing, []string{msp(1), msp(2)}) {
			t.Fatalf("two different assessments must decide nothing: %+v", r)
		}
	})
	t.Run("the third org is honest", func(t *testing.T) {
		w := committedRound(t, terms())
		w.must(admin(1), w.post(1, greedy))
		w.must(admin(2), w.post(1, honest))
		w.must(admin(3), w.post(1, honest))
		w.must(t1, w.settle(1))
		r := w.result(1)
		if r.Status != Finalized || !slices.Equal(r.Agreeing, []string{msp(2), msp(3)}) || !slices.Equal(r.Disagreeing, []string{msp(1)}) {
			t.Fatalf("org2 and org3 must decide: %+v", r)
		}
		if r.Rewards[key(t1)] != 30 || r.Rewards[key(t2)] != 30 || r.Rewards[key(t3)] != 30 {
			t.Fatalf("rewards %v, want the honest 30 each", r.Rewards)
		}
	})
}

// Scores are bounded and name exactly the round's usable updates; every malformed
// assessment is refused with INVALID (or the phase's code) and changes nothing.
func TestMalformedAssessmentsAreRefused(t *testing.T) {
	w := committedRound(t, terms())
	post := func(scores string, flagged, missing []string) func(fakeledger.Ctx) error {
		return func(ctx fakeledger.Ctx) error {
			_, err := w.c.PostAggregate(ctx, "t1", 1, d("9"), scores, flagged, missing)
			return err
		}
	}
	all := `{"Org1MSP/trainer":1,"Org2MSP/trainer":2,"Org3MSP/trainer":3}`
	client := fakeledger.User(msp(1))
	w.refuse(
		fakeledger.R("a score over MaxScore", admin(1), post(`{"Org1MSP/trainer":1001,"Org2MSP/trainer":2,"Org3MSP/trainer":3}`, nil, nil), ledgerutil.Invalid),
		fakeledger.R("a negative score", admin(1), post(`{"Org1MSP/trainer":-1,"Org2MSP/trainer":2,"Org3MSP/trainer":3}`, nil, nil), ledgerutil.Invalid),
		fakeledger.R("a score beyond int64", admin(1), post(`{"Org1MSP/trainer":1e30,"Org2MSP/trainer":2,"Org3MSP/trainer":3}`, nil, nil), ledgerutil.Invalid),
		fakeledger.R("a score for a stranger", admin(1), post(`{"Org1MSP/trainer":1,"Org2MSP/trainer":2,"Org3MSP/trainer":3,"Org9MSP/x":1}`, nil, nil), ledgerutil.Invalid),
		fakeledger.R("a usable update without a score", admin(1), post(`{"Org1MSP/trainer":1,"Org2MSP/trainer":2}`, nil, nil), ledgerutil.Invalid),
		fakeledger.R("flagging a stranger", admin(1), post(all, []string{"Org9MSP/x"}, nil), ledgerutil.Invalid),
		fakeledger.R("flagging twice", admin(1), post(all, []string{key(t2), key(t2)}, nil), ledgerutil.Invalid),
		fakeledger.R("reporting a missing update before the reveal window ran", admin(1), post(`{"Org1MSP/trainer":1,"Org2MSP/trainer":2}`, nil, []string{key(t3)}), ledgerutil.WrongPhase),
		fakeledger.R("scores that are not JSON", admin(1), post(`{`, nil, nil), ledgerutil.Invalid),
		fakeledger.R("a malformed digest", admin(1), func(ctx fakeledger.Ctx) error {
			_, err := w.c.PostAggregate(ctx, "t1", 1, "abc", all, nil, nil)
			return err
		}, ledgerutil.Invalid),
		fakeledger.R("a post by an identity without a role", client, post(all, nil, nil), ledgerutil.Forbidden),
		fakeledger.R("a post by an org without a participant", admin(4), post(all, nil, nil), ledgerutil.Forbidden),
		fakeledger.R("a post for a round beyond the task", admin(1), func(ctx fakeledger.Ctx) error {
			_, err := w.c.PostAggregate(ctx, "t1", 4, d("9"), all, nil, nil)
			return err
		}, ledgerutil.Invalid),
		fakeledger.R("a post for round 2 before round 1 is settled", admin(1), func(ctx fakeledger.Ctx) error {
			_, err := w.c.PostAggregate(ctx, "t1", 2, d("9"), all, nil, nil)
			return err
		}, ledgerutil.WrongPhase),
	)
	w.later(60*time.Second + w.margin() + 60*time.Second + 2*w.margin() + time.Second)
	w.refuse(fakeledger.R("a post after the aggregate phase", admin(1), post(all, nil, nil), ledgerutil.WrongPhase))
}

// Finding 1, arithmetic: an escrow of rewardPerRound x rounds that would wrap (2^62 x 4
// is 0 in int64) or exceed the token cap, and stakes beyond it, are refused; nothing moves.
func TestEscrowsAndStakesBeyondTheTokenCapAreRefused(t *testing.T) {
	w := newWorld(t)
	create := func(m func(*TaskRequest)) func(fakeledger.Ctx) error { return w.create(terms(m)) }
	w.refuse(
		fakeledger.R("an escrow that wraps to zero", admin(1), create(func(r *TaskRequest) { r.RewardPerRound, r.Rounds = 1<<62, 4 }), ledgerutil.Invalid),
		fakeledger.R("an escrow that wraps negative", admin(1), create(func(r *TaskRequest) { r.RewardPerRound, r.Rounds = 1<<61-125, 8 }), ledgerutil.Invalid),
		fakeledger.R("an escrow over the cap", admin(1), create(func(r *TaskRequest) { r.RewardPerRound, r.Rounds = token.MaxAmount, 2 }), ledgerutil.Invalid),
		fakeledger.R("a stake over the cap", admin(1), create(func(r *TaskRequest) { r.Stake = token.MaxAmount + 1 }), ledgerutil.Invalid),
		fakeledger.R("a negative stake", admin(1), create(func(r *TaskRequest) { r.Stake = -1 }), ledgerutil.Invalid),
		fakeledger.R("a negative reward", admin(1), create(func(r *TaskRequest) { r.RewardPerRound = -1 }), ledgerutil.Invalid),
		fakeledger.R("an escrow beyond the balance", admin(1), create(func(r *TaskRequest) { r.RewardPerRound = funds }), ledgerutil.Exhausted),
	)
	if got := w.balances(); got != [4]int64{funds, funds, funds, funds} {
		t.Fatalf("balances %v after refused tasks", got)
	}
}

// shares never pays a negative amount, always pays the pool exactly, and an org's
// share does not change when it enrolls more identities with the same scores.
func TestSharesAreNonNegativeExactAndPerOrganization(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 2000; trial++ {
		pool := []int64{0, 1, 7, 90, token.MaxAmount, rng.Int64N(token.MaxAmount)}[trial%6]
		ps, scores := []Participant{}, map[string]int64{}
		for org := 1; org <= 1+rng.IntN(5); org++ {
			p := Participant{MSPID: msp(org), Subject: "trainer"}
			ps, scores[p.Key()] = append(ps, p), rng.Int64N(MaxScore+1)
		}
		got := shares(pool, ps, scores)
		var sum int64
		for _, v := range got {
			if v < 0 {
				t.Fatalf("a negative share %d of pool %d: %v", v, pool, got)
			}
			sum += v
		}
		if sum != pool {
			t.Fatalf("shares %v add up to %d, the pool is %d", got, sum, pool)
		}
		// The first org enrolls sybils with its participant's score: its total is the same.
		sybils := slices.Clone(ps)
		for i := 2; i <= 4; i++ {
			s := Participant{MSPID: ps[0].MSPID, Subject: "sybil" + string(rune('0'+i))}
			sybils, scores[s.Key()] = append(sybils, s), scores[ps[0].Key()]
		}
		withSybils := shares(pool, sybils, scores)
		var org1 int64
		for _, s := range sybils[:1] {
			org1 += got[s.Key()]
		}
		var org1s int64
		for k, v := range withSybils {
			if k[:len(ps[0].MSPID)] == ps[0].MSPID {
				org1s += v
			}
		}
		if org1s != org1 {
			t.Fatalf("with sybils org1 gets %d, without %d (pool %d, %v)", org1s, org1, pool, scores)
		}
	}
}
