package federation

import (
	"testing"
	"time"

	"github.com/fabricml/fabricml/chaincode/internal/fakeledger"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

func TestFederationRefusalsCarryTheirCode(t *testing.T) {
	w := running(t, terms(), t1, t2, t3)
	w.must(t1, w.commit(1, d("c")))
	other := func(m func(*TaskRequest)) TaskRequest {
		return terms(func(r *TaskRequest) { r.ID = "t2"; m(r) })
	}
	task := func(f func(fakeledger.Ctx, string) (*Task, error), id string) func(fakeledger.Ctx) error {
		return func(ctx fakeledger.Ctx) error { _, err := f(ctx, id); return err }
	}
	latecomer := trainer(4, "trainer")
	w.refuse(
		fakeledger.R("a trainer creates a task", t1, w.create(other(func(*TaskRequest) {})), ledgerutil.Forbidden),
		fakeledger.R("a task that is not JSON", admin(1), func(ctx fakeledger.Ctx) error { _, err := w.c.CreateTask(ctx, "{"); return err }, ledgerutil.Invalid),
		fakeledger.R("an unknown field", admin(1), func(ctx fakeledger.Ctx) error { _, err := w.c.CreateTask(ctx, `{"id":"t2","bogus":1}`); return err }, ledgerutil.Invalid),
		fakeledger.R("a malformed task id", admin(1), w.create(other(func(r *TaskRequest) { r.ID = "t 2" })), ledgerutil.Invalid),
		fakeledger.R("an unknown rule", admin(1), w.create(other(func(r *TaskRequest) { r.Rule = "mean-ish" })), ledgerutil.Invalid),
		fakeledger.R("zero rounds", admin(1), w.create(other(func(r *TaskRequest) { r.Rounds = 0 })), ledgerutil.Invalid),
		fakeledger.R("one participant", admin(1), w.create(other(func(r *TaskRequest) { r.MinParticipants = 1 })), ledgerutil.Invalid),
		fakeledger.R("a negative maxPerOrg", admin(1), w.create(other(func(r *TaskRequest) { r.MaxPerOrg = -1 })), ledgerutil.Invalid),
		fakeledger.R("a clock skew of an hour", admin(1), w.create(other(func(r *TaskRequest) { r.ClockSkewSeconds = 3600 })), ledgerutil.Invalid),
		fakeledger.R("an unregistered initial model", admin(1), w.create(other(func(r *TaskRequest) { r.InitialModel = "nope@1" })), ledgerutil.NotFound),
		fakeledger.R("the same task again", admin(1), w.create(terms()), ledgerutil.AlreadyDone),
		fakeledger.R("other terms under a task id", admin(2), w.create(terms()), ledgerutil.Conflict),
		fakeledger.R("an admin joins", admin(2), w.join, ledgerutil.Forbidden),
		fakeledger.R("joining an unknown task", t1, task(w.c.Join, "t9"), ledgerutil.NotFound),
		fakeledger.R("joining a running task", latecomer, w.join, ledgerutil.WrongPhase),
		fakeledger.R("an outsider joins", outsider, task(w.c.Join, "t1"), ledgerutil.WrongPhase),
		fakeledger.R("starting a running task", admin(1), w.start, ledgerutil.WrongPhase),
		fakeledger.R("a trainer starts the task", t1, w.start, ledgerutil.Forbidden),
		fakeledger.R("an outsider commits", outsider, w.commit(1, d("e")), ledgerutil.Forbidden),
		fakeledger.R("a malformed digest", t2, w.commit(1, "abc"), ledgerutil.Invalid),
		fakeledger.R("an empty uri", t2, func(ctx fakeledger.Ctx) error { _, err := w.c.Commit(ctx, "t1", 1, d("e"), 10, ""); return err }, ledgerutil.Invalid),
		fakeledger.R("a commitment for round 0", t2, w.commit(0, d("e")), ledgerutil.Invalid),
		fakeledger.R("a commitment for round 2 while round 1's are open", t2, w.commit(2, d("e")), ledgerutil.WrongPhase),
		fakeledger.R("a changed commitment", t1, w.commit(1, d("e")), ledgerutil.Conflict),
		fakeledger.R("an assessment while commitments are open", admin(1), w.post(1, assessment{digest: "9", scores: scoresOf(1, t1)}), ledgerutil.WrongPhase),
		fakeledger.R("settling while commitments are open", admin(4), w.settle(1), ledgerutil.WrongPhase),
		fakeledger.R("settling round 2 first", admin(4), w.settle(2), ledgerutil.WrongPhase),
		fakeledger.R("an outsider settles", outsider, w.settle(1), ledgerutil.Forbidden),
		fakeledger.R("a round that is not settled", admin(1), func(ctx fakeledger.Ctx) error { _, err := w.c.GetRound(ctx, "t1", 1); return err }, ledgerutil.NotFound),
		fakeledger.R("the state of a round beyond the next", admin(1), func(ctx fakeledger.Ctx) error { _, err := w.c.GetRoundState(ctx, "t1", 2); return err }, ledgerutil.WrongPhase),
	)
}

// A retry of a join, a commitment, an assessment or a settlement is answered with the
// record it already made: no second stake, no second event, no write, in any phase.
func TestRetriesAreAnsweredWithTheExistingRecord(t *testing.T) {
	w := running(t, terms(), t1, t2, t3)
	before := w.balances()
	if tk := fakeledger.Unchanged(t, w.stub, t1, func(ctx fakeledger.Ctx) (*Task, error) { return w.c.Join(ctx, "t1") }); len(tk.Participants) != 3 || w.balances() != before {
		t.Fatalf("joining again must not stake twice: %+v", tk)
	}
	commit := func(tr fakeledger.Identity, digest string) func(fakeledger.Ctx) (*Commitment, error) {
		return func(ctx fakeledger.Ctx) (*Commitment, error) {
			return w.c.Commit(ctx, "t1", 1, digest, 10, "https://store/v1/blobs/"+digest)
		}
	}
	for i, tr := range []fakeledger.Identity{t1, t2, t3} {
		w.must(tr, func(ctx fakeledger.Ctx) error { _, err := commit(tr, d(string(rune('c'+i))))(ctx); return err })
	}
	honest := assessment{digest: "9", scores: scoresOf(500, t1, t2, t3)}
	w.must(admin(1), w.post(1, honest))
	w.must(admin(2), w.post(1, honest))
	w.later(time.Second) // the round moved on: the same calls are still answered
	if cm := fakeledger.Unchanged(t, w.stub, t1, commit(t1, d("c"))); cm.Digest != d("c") || cm.TxID == w.stub.TxID {
		t.Fatalf("the commitment returned is not the first one: %+v", cm)
	}
	post := func(ctx fakeledger.Ctx) (*AggregatePost, error) {
		return w.c.PostAggregate(ctx, "t1", 1, d("9"), `{"Org1MSP/trainer":500,"Org2MSP/trainer":500,"Org3MSP/trainer":500}`, []string{}, nil)
	}
	fakeledger.Unchanged(t, w.stub, admin(1), post)
	w.must(t3, w.settle(1))
	settled := fakeledger.Unchanged(t, w.stub, t2, func(ctx fakeledger.Ctx) (*RoundResult, error) { return w.c.Settle(ctx, "t1", 1) })
	if settled.Status != Finalized || settled.TxID == w.stub.TxID {
		t.Fatalf("the settlement returned is not the first one: %+v", settled)
	}
	fakeledger.Unchanged(t, w.stub, admin(1), post)
	w.refuse(
		fakeledger.R("another assessment by the same org", admin(1), w.post(1, assessment{digest: "8", scores: honest.scores}), ledgerutil.Conflict),
		fakeledger.R("another uri for a commitment", t1, func(ctx fakeledger.Ctx) error {
			_, err := w.c.Commit(ctx, "t1", 1, d("c"), 10, "https://elsewhere")
			return err
		}, ledgerutil.Conflict),
		fakeledger.R("a late assessment of a settled round", admin(3), w.post(1, honest), ledgerutil.WrongPhase),
	)
}
