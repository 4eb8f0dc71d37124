package federation

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fabricml/fabricml/chaincode/consortium"
	"github.com/fabricml/fabricml/chaincode/internal/fakeledger"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
	"github.com/fabricml/fabricml/chaincode/registry"
	"github.com/fabricml/fabricml/chaincode/token"
)

func admin(org int) fakeledger.Identity {
	return fakeledger.Admin(msp(org))
}

func trainer(org int, name string) fakeledger.Identity {
	return fakeledger.WithRole(msp(org), name, "trainer")
}

func msp(org int) string { return "Org" + string(rune('0'+org)) + "MSP" }

var (
	t1, t2, t3, t4 = trainer(1, "trainer"), trainer(2, "trainer"), trainer(3, "trainer"), trainer(4, "trainer")
	t1b            = trainer(1, "trainer2") // a second identity of org1: a sybil
	outsider       = fakeledger.Trainer("Org9MSP")
	d              = func(c string) string { return strings.Repeat(c, 64) }
)

// nth is the n-th distinct digest.
func nth(n int) string { return fmt.Sprintf("%064x", n) }

func key(i fakeledger.Identity) string { return i.MSPID + "/" + i.Name }

const funds = 10_000 // minted for each of the four members

// world is a consortium of four orgs on the unit-test ledger. Every transaction it
// submits is followed by the conservation check: the tokens of every balance and every
// task's escrow add up to the minted supply, and each escrow to its stakes and rewards.
type world struct {
	t    *testing.T
	stub *fakeledger.Stub
	c    *Contract
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, stub: fakeledger.NewStub(), c: New()}
	for org := 1; org <= 4; org++ {
		w.must(admin(org), func(ctx fakeledger.Ctx) error {
			if _, err := consortium.New().Join(ctx, msp(org)); err != nil {
				return err
			}
			return token.Mint(ctx, msp(org), funds)
		})
	}
	req, _ := json.Marshal(registry.RegistrationRequest{Name: "base", Version: "1", ManifestDigest: d("a"),
		Weights: registry.Weights{Digest: d("b"), Files: 1}, TrainingOrgs: []string{msp(1)}})
	w.must(t1, func(ctx fakeledger.Ctx) error { _, err := registry.New().Register(ctx, string(req)); return err })
	return w
}

// terms: 3 rounds, at least 2 participants, stake 100, reward 90 per round, windows of a minute.
func terms(mutate ...func(*TaskRequest)) TaskRequest {
	r := TaskRequest{ID: "t1", InitialModel: "base@1", Rounds: 3, MinParticipants: 2, Stake: 100, RewardPerRound: 90,
		CommitSeconds: 60, RevealSeconds: 60, AggregateSeconds: 60, Rule: "median"}
	for _, m := range mutate {
		m(&r)
	}
	return r
}

func (r TaskRequest) json() string {
	raw, _ := json.Marshal(r)
	return string(raw)
}

// submit runs one transaction and then checks that tokens are conserved.
func (w *world) submit(who fakeledger.Identity, f func(fakeledger.Ctx) error) error {
	w.t.Helper()
	_, err := fakeledger.Submit(w.stub, who, func(ctx fakeledger.Ctx) (struct{}, error) { return struct{}{}, f(ctx) })
	w.conserved()
	return err
}

func (w *world) must(who fakeledger.Identity, f func(fakeledger.Ctx) error) {
	w.t.Helper()
	if err := w.submit(who, f); err != nil {
		w.t.Fatal(err)
	}
}

// refuse submits calls that must be refused with their code and change nothing.
func (w *world) refuse(cases ...fakeledger.Refusal) {
	w.t.Helper()
	fakeledger.CheckRefusals(w.t, w.stub, cases)
	w.conserved()
}

// block submits proposals at once as one block and fails unless every one is valid.
func (w *world) block(proposals ...fakeledger.Proposal) {
	w.t.Helper()
	for i, o := range w.stub.Block(proposals...) {
		if o.Code != fakeledger.Valid {
			w.t.Fatalf("transaction %d of the block is %s: %v", i, o.Code, o.Err)
		}
	}
	w.conserved()
}

func (w *world) q() fakeledger.Ctx { return fakeledger.Query(w.stub, admin(1)) }

// conserved: balances + escrows = minted supply, and each task's escrow is its stakes,
// unpaid rewards, carry and forfeits (zero once it is done).
func (w *world) conserved() {
	w.t.Helper()
	ctx := w.q()
	supply, err := token.MintedSupply(ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	var sum int64
	w.each(ctx, "balance", func(raw []byte) {
		var b token.Balance
		_ = json.Unmarshal(raw, &b)
		if b.Amount < 0 {
			w.t.Fatalf("a negative balance: %+v", b)
		}
		sum += b.Amount
	})
	w.each(ctx, stateKeyType, func(raw []byte) {
		var st TaskState
		_ = json.Unmarshal(raw, &st)
		sum += st.Escrow
		w.escrowAddsUp(ctx, &st)
	})
	if sum != supply {
		w.t.Fatalf("tokens not conserved: balances and escrows add up to %d, the minted supply is %d", sum, supply)
	}
}

func (w *world) escrowAddsUp(ctx fakeledger.Ctx, st *TaskState) {
	w.t.Helper()
	want := st.RewardLeft + st.Carry + st.Forfeit
	if !st.Done {
		tk, _, err := w.c.load(ctx, st.TaskID)
		if err != nil {
			w.t.Fatal(err)
		}
		ms, err := members(ctx, tk)
		if err != nil {
			w.t.Fatal(err)
		}
		for _, m := range ms {
			want += m.Stake
		}
	}
	if st.Escrow != want || st.Escrow < 0 || (st.Done && st.Escrow != 0) {
		w.t.Fatalf("task %s escrows %d, its stakes and rewards add up to %d (done: %t)", st.TaskID, st.Escrow, want, st.Done)
	}
}

func (w *world) each(ctx fakeledger.Ctx, kind string, f func([]byte)) {
	w.t.Helper()
	it, err := ctx.GetStub().GetStateByPartialCompositeKey(kind, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	defer it.Close()
	for it.HasNext() {
		kv, _ := it.Next()
		f(kv.Value)
	}
}

func (w *world) balance(org int) int64 {
	w.t.Helper()
	b, err := token.BalanceOf(w.q(), msp(org))
	if err != nil {
		w.t.Fatal(err)
	}
	return b
}

func (w *world) balances() [4]int64 {
	return [4]int64{w.balance(1), w.balance(2), w.balance(3), w.balance(4)}
}

// later moves the proposal time and every endorser's clock on.
func (w *world) later(dt time.Duration) { w.stub.Time = w.stub.Time.Add(dt) }

// ---- the task's calls, as closures -------------------------------------------------

func (w *world) create(r TaskRequest) func(fakeledger.Ctx) error {
	return func(ctx fakeledger.Ctx) error { _, err := w.c.CreateTask(ctx, r.json()); return err }
}

func (w *world) join(ctx fakeledger.Ctx) error  { _, err := w.c.Join(ctx, "t1"); return err }
func (w *world) leave(ctx fakeledger.Ctx) error { _, err := w.c.Leave(ctx, "t1"); return err }
func (w *world) start(ctx fakeledger.Ctx) error { _, err := w.c.Start(ctx, "t1"); return err }
func (w *world) close(ctx fakeledger.Ctx) error { _, err := w.c.Close(ctx, "t1"); return err }

func (w *world) cancel(ctx fakeledger.Ctx) error { _, err := w.c.Cancel(ctx, "t1"); return err }

func (w *world) commit(round int, digest string) func(fakeledger.Ctx) error {
	return w.commitN(round, digest, 10)
}

func (w *world) commitN(round int, digest string, samples int64) func(fakeledger.Ctx) error {
	return func(ctx fakeledger.Ctx) error {
		_, err := w.c.Commit(ctx, "t1", round, digest, samples, "https://store/v1/blobs/"+digest)
		return err
	}
}

// assessment is what an org posts.
type assessment struct {
	digest           string
	scores           map[string]int64
	flagged, missing []string
}

func (w *world) post(round int, a assessment) func(fakeledger.Ctx) error {
	return func(ctx fakeledger.Ctx) error {
		raw, _ := json.Marshal(a.scores)
		_, err := w.c.PostAggregate(ctx, "t1", round, d(a.digest), string(raw), a.flagged, a.missing)
		return err
	}
}

func (w *world) settle(round int) func(fakeledger.Ctx) error {
	return func(ctx fakeledger.Ctx) error { _, err := w.c.Settle(ctx, "t1", round); return err }
}

func (w *world) result(round int) *RoundResult {
	w.t.Helper()
	r, err := w.c.GetRound(w.q(), "t1", round)
	return answer(w.t, r, err)
}

func (w *world) state(round int) *RoundState {
	w.t.Helper()
	rs, err := w.c.GetRoundState(w.q(), "t1", round)
	return answer(w.t, rs, err)
}

func (w *world) task() *TaskView {
	w.t.Helper()
	v, err := w.c.GetTask(w.q(), "t1")
	return answer(w.t, v, err)
}

// answer is a query's answer; it fails t on an error or on a JSON null in it: the
// contract API checks answers against the declared schema, and a nil list (null where
// an array is declared) makes the peer answer 500 (found on the real network).
func answer[R any](t *testing.T, v R, err error) R {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(v)
	if strings.Contains(string(raw), "null") {
		t.Fatalf("a null in %s", raw)
	}
	return v
}

// running: task t1 (terms as given) created by org1 and started with these trainers.
func running(t *testing.T, r TaskRequest, who ...fakeledger.Identity) *world {
	t.Helper()
	w := newWorld(t)
	w.must(admin(1), w.create(r))
	for _, tr := range who {
		w.must(tr, w.join)
	}
	w.must(admin(1), w.start)
	return w
}

// scoresOf gives each named participant the same score.
func scoresOf(score int64, who ...fakeledger.Identity) map[string]int64 {
	out := map[string]int64{}
	for _, i := range who {
		out[key(i)] = score
	}
	return out
}

func code(err error) ledgerutil.Code { return ledgerutil.CodeOf(err) }
