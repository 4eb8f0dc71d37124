package federation

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fabricml/fabricml/chaincode/internal/fakeledger"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
	"github.com/fabricml/fabricml/chaincode/token"
)

func submit[R any](t *testing.T, stub *fakeledger.Stub, who fakeledger.Identity, f func(fakeledger.Ctx) (R, error)) R {
	t.Helper()
	r, err := fakeledger.Submit(stub, who, f)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// runningTask: task t1 (3 rounds, four trainers) in round 1's COMMIT phase, with
// trainers[0]'s commitment of d("c").
func runningTask(t *testing.T) (*fakeledger.Stub, *Contract) {
	t.Helper()
	stub := consortiumWithTokens(t)
	c := New()
	submit(t, stub, admins[0], func(ctx fakeledger.Ctx) (*Task, error) { return c.CreateTask(ctx, task(3)) })
	for _, tr := range trainers {
		submit(t, stub, tr, func(ctx fakeledger.Ctx) (*Task, error) { return c.Join(ctx, "t1") })
	}
	submit(t, stub, admins[0], func(ctx fakeledger.Ctx) (*Task, error) { return c.Start(ctx, "t1") })
	submit(t, stub, trainers[0], func(ctx fakeledger.Ctx) (*Commitment, error) { return c.Commit(ctx, "t1", 1, d("c"), 10) })
	return stub, c
}

func withTask(mutate func(*TaskRequest)) string {
	var r TaskRequest
	_ = json.Unmarshal([]byte(task(1)), &r)
	mutate(&r)
	raw, _ := json.Marshal(r)
	return string(raw)
}

func TestFederationRefusalsCarryTheirCode(t *testing.T) {
	stub, c := runningTask(t)
	create := func(req string) func(fakeledger.Ctx) error {
		return func(ctx fakeledger.Ctx) error { _, err := c.CreateTask(ctx, req); return err }
	}
	other := func(r *TaskRequest) { r.ID = "t2" }
	commit := func(round int, digest string, samples int64) func(fakeledger.Ctx) error {
		return func(ctx fakeledger.Ctx) error { _, err := c.Commit(ctx, "t1", round, digest, samples); return err }
	}
	reveal := func(digest, uri string) func(fakeledger.Ctx) error {
		return func(ctx fakeledger.Ctx) error { _, err := c.Reveal(ctx, "t1", 1, digest, uri); return err }
	}
	post := func(scores string) func(fakeledger.Ctx) error {
		return func(ctx fakeledger.Ctx) error {
			_, err := c.PostAggregate(ctx, "t1", 1, d("9"), scores, nil)
			return err
		}
	}
	task1 := func(f func(fakeledger.Ctx, string) (*Task, error), id string) func(fakeledger.Ctx) error {
		return func(ctx fakeledger.Ctx) error { _, err := f(ctx, id); return err }
	}
	latecomer := fakeledger.Identity{MSPID: "Org2MSP", Name: "trainer9", OU: "client", Attrs: map[string]string{"role": "trainer"}}
	outsider := fakeledger.Identity{MSPID: "Org9MSP", Name: "trainer", OU: "client", Attrs: map[string]string{"role": "trainer"}}
	fakeledger.CheckRefusals(t, stub, []fakeledger.Refusal{
		fakeledger.R("a trainer creates a task", trainers[0], create(withTask(other)), ledgerutil.Forbidden),
		fakeledger.R("a task that is not JSON", admins[0], create("{"), ledgerutil.Invalid),
		fakeledger.R("a malformed task id", admins[0], create(withTask(func(r *TaskRequest) { r.ID = "t 2" })), ledgerutil.Invalid),
		fakeledger.R("an unknown rule", admins[0], create(withTask(func(r *TaskRequest) { other(r); r.Rule = "mean-ish" })), ledgerutil.Invalid),
		fakeledger.R("zero rounds", admins[0], create(withTask(func(r *TaskRequest) { other(r); r.Rounds = 0 })), ledgerutil.Invalid),
		fakeledger.R("a negative stake", admins[0], create(withTask(func(r *TaskRequest) { other(r); r.Stake = -1 })), ledgerutil.Invalid),
		fakeledger.R("an unregistered initial model", admins[0], create(withTask(func(r *TaskRequest) { other(r); r.InitialModel = "nope@1" })), ledgerutil.NotFound),
		fakeledger.R("an escrow beyond the balance", admins[0], create(withTask(func(r *TaskRequest) { other(r); r.RewardPerRound = 5000 })), ledgerutil.Exhausted),
		fakeledger.R("the same task again", admins[0], create(task(3)), ledgerutil.AlreadyDone),
		fakeledger.R("other terms under a task id", admins[1], create(task(3)), ledgerutil.Conflict),
		fakeledger.R("an admin joins", admins[1], task1(c.Join, "t1"), ledgerutil.Forbidden),
		fakeledger.R("joining an unknown task", trainers[0], task1(c.Join, "t9"), ledgerutil.NotFound),
		fakeledger.R("joining a running task", latecomer, task1(c.Join, "t1"), ledgerutil.WrongPhase),
		fakeledger.R("starting a running task", admins[0], task1(c.Start, "t1"), ledgerutil.WrongPhase),
		fakeledger.R("a trainer starts the task", trainers[0], task1(c.Start, "t1"), ledgerutil.Forbidden),
		fakeledger.R("advancing before everyone committed", admins[0], task1(c.Advance, "t1"), ledgerutil.WrongPhase),
		fakeledger.R("an outsider commits", outsider, commit(1, d("e"), 10), ledgerutil.Forbidden),
		fakeledger.R("a malformed digest", trainers[1], commit(1, "abc", 10), ledgerutil.Invalid),
		fakeledger.R("zero samples", trainers[1], commit(1, d("e"), 0), ledgerutil.Invalid),
		fakeledger.R("a commitment for a later round", trainers[1], commit(2, d("e"), 10), ledgerutil.WrongPhase),
		fakeledger.R("a changed commitment", trainers[0], commit(1, d("e"), 10), ledgerutil.Conflict),
		fakeledger.R("a reveal in the commit phase", trainers[0], reveal(d("c"), "https://x"), ledgerutil.WrongPhase),
		fakeledger.R("an empty uri", trainers[0], reveal(d("c"), ""), ledgerutil.Invalid),
		fakeledger.R("an aggregate in the commit phase", admins[0], post(`{}`), ledgerutil.WrongPhase),
		fakeledger.R("an aggregate by a client", fakeledger.Identity{MSPID: "Org1MSP", Name: "user1", OU: "client"}, post(`{}`), ledgerutil.Forbidden),
		fakeledger.R("scores that are not JSON", admins[0], post(`{`), ledgerutil.Invalid),
		fakeledger.R("a round that has not ended", admins[0], func(ctx fakeledger.Ctx) error { _, err := c.GetRound(ctx, "t1", 1); return err }, ledgerutil.NotFound),
	})
}

// A retry of a commitment, a reveal, an aggregate or a join is answered with the
// record it already made: no second stake, no second event, and only other content
// under the same key is refused.
func TestRetriesAreAnsweredWithTheExistingRecord(t *testing.T) {
	stub, c := runningTask(t)
	before := balance(t, stub, "Org1MSP")
	joined := fakeledger.Unchanged(t, stub, trainers[0], func(ctx fakeledger.Ctx) (*Task, error) { return c.Join(ctx, "t1") })
	if len(joined.Participants) != len(trainers) || balance(t, stub, "Org1MSP") != before {
		t.Fatalf("joining again must not stake twice: %d participants, balance %d -> %d", len(joined.Participants), before, balance(t, stub, "Org1MSP"))
	}
	cm := fakeledger.Unchanged(t, stub, trainers[0], func(ctx fakeledger.Ctx) (*Commitment, error) { return c.Commit(ctx, "t1", 1, d("c"), 10) })
	if cm.Digest != d("c") || cm.TxID == stub.TxID {
		t.Fatalf("the commitment returned is not the first one: %+v", cm)
	}
	for i, tr := range trainers[1:] {
		submit(t, stub, tr, func(ctx fakeledger.Ctx) (*Commitment, error) {
			return c.Commit(ctx, "t1", 1, d(string(rune('d'+i))), 10)
		})
	}
	submit(t, stub, admins[0], func(ctx fakeledger.Ctx) (*Task, error) { return c.Advance(ctx, "t1") })
	// The phase moved on; the commitment is still the answer to its retry.
	fakeledger.Unchanged(t, stub, trainers[0], func(ctx fakeledger.Ctx) (*Commitment, error) { return c.Commit(ctx, "t1", 1, d("c"), 10) })
	for i, tr := range trainers {
		submit(t, stub, tr, func(ctx fakeledger.Ctx) (*Commitment, error) {
			return c.Reveal(ctx, "t1", 1, d(string(rune('c'+i))), "https://org/blob")
		})
	}
	fakeledger.Unchanged(t, stub, trainers[0], func(ctx fakeledger.Ctx) (*Commitment, error) {
		return c.Reveal(ctx, "t1", 1, d("c"), "https://org/blob")
	})
	fakeledger.CheckRefusals(t, stub, []fakeledger.Refusal{
		fakeledger.R("a reveal at another uri", trainers[0], func(ctx fakeledger.Ctx) error {
			_, err := c.Reveal(ctx, "t1", 1, d("c"), "https://elsewhere")
			return err
		}, ledgerutil.Conflict),
	})
	submit(t, stub, admins[0], func(ctx fakeledger.Ctx) (*Task, error) { return c.Advance(ctx, "t1") })
	scores := `{"Org1MSP/trainer":3,"Org1MSP/trainer2":1,"Org2MSP/trainer":2,"Org3MSP/trainer":1}`
	postAs := func(admin fakeledger.Identity, s string, flagged []string) func(fakeledger.Ctx) (*AggregatePost, error) {
		return func(ctx fakeledger.Ctx) (*AggregatePost, error) {
			return c.PostAggregate(ctx, "t1", 1, d("9"), s, flagged)
		}
	}
	first := submit(t, stub, admins[0], postAs(admins[0], scores, []string{"Org3MSP/trainer", "Org1MSP/trainer2"}))
	again := fakeledger.Unchanged(t, stub, admins[0], postAs(admins[0], scores, []string{"Org1MSP/trainer2", "Org3MSP/trainer"}))
	if again.TxID != first.TxID {
		t.Fatalf("the post returned is not the first one: %+v", again)
	}
	fakeledger.CheckRefusals(t, stub, []fakeledger.Refusal{
		fakeledger.R("other scores by the same org", admins[0], func(ctx fakeledger.Ctx) error {
			_, err := postAs(admins[0], strings.Replace(scores, ":3", ":2", 1), first.Flagged)(ctx)
			return err
		}, ledgerutil.Conflict),
		fakeledger.R("other flags by the same org", admins[0], func(ctx fakeledger.Ctx) error { _, err := postAs(admins[0], scores, nil)(ctx); return err }, ledgerutil.Conflict),
		fakeledger.R("a score over the cap", admins[1], func(ctx fakeledger.Ctx) error {
			_, err := postAs(admins[1], `{"Org2MSP/trainer":1000001}`, nil)(ctx)
			return err
		}, ledgerutil.Invalid),
		fakeledger.R("a negative score", admins[1], func(ctx fakeledger.Ctx) error {
			_, err := postAs(admins[1], `{"Org2MSP/trainer":-1}`, nil)(ctx)
			return err
		}, ledgerutil.Invalid),
		fakeledger.R("a score for a stranger", admins[1], func(ctx fakeledger.Ctx) error { _, err := postAs(admins[1], `{"Org9MSP/x":1}`, nil)(ctx); return err }, ledgerutil.Invalid),
	})
	stub.Time = stub.Time.Add(2 * time.Minute)
	fakeledger.CheckRefusals(t, stub, []fakeledger.Refusal{
		fakeledger.R("an aggregate after the deadline", admins[1], func(ctx fakeledger.Ctx) error { _, err := postAs(admins[1], scores, nil)(ctx); return err }, ledgerutil.WrongPhase),
	})
}

// A reward per round near 2^61 times 8 rounds wraps an int64 escrow to -1000: the
// creator would be paid 1000 tokens for opening the task. The bound on rewards refuses it.
func TestAnEscrowThatWouldOverflowIsRefusedAndMintsNothing(t *testing.T) {
	stub := consortiumWithTokens(t)
	c := New()
	wrap := withTask(func(r *TaskRequest) { r.ID = "wrap"; r.Rounds = 8; r.RewardPerRound = 1<<61 - 125 })
	fakeledger.CheckRefusals(t, stub, []fakeledger.Refusal{
		fakeledger.R("a wrapping escrow", admins[0], func(ctx fakeledger.Ctx) error { _, err := c.CreateTask(ctx, wrap); return err }, ledgerutil.Invalid),
		fakeledger.R("a reward over the token cap", admins[0], func(ctx fakeledger.Ctx) error {
			_, err := c.CreateTask(ctx, withTask(func(r *TaskRequest) { r.RewardPerRound = token.MaxAmount + 1 }))
			return err
		}, ledgerutil.Invalid),
	})
	if balance(t, stub, "Org1MSP") != 1000 {
		t.Fatalf("org1 must still hold 1000 tokens, holds %d", balance(t, stub, "Org1MSP"))
	}
}

func TestARewardShareDoesNotOverflow(t *testing.T) {
	pool, score, total := token.MaxAmount*257, int64(MaxScore), int64(MaxScore)*2
	if got := mulDiv(pool, score, total); got != pool/2 {
		t.Fatalf("mulDiv(%d, %d, %d) = %d, want %d", pool, score, total, got, pool/2)
	}
}
