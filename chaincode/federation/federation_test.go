package federation

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fabricml/fabricml/chaincode/consortium"
	"github.com/fabricml/fabricml/chaincode/internal/fakeledger"
	"github.com/fabricml/fabricml/chaincode/registry"
	"github.com/fabricml/fabricml/chaincode/token"
)

var (
	admins = []fakeledger.Identity{
		{MSPID: "Org1MSP", Name: "admin", OU: "admin"},
		{MSPID: "Org2MSP", Name: "admin", OU: "admin"},
		{MSPID: "Org3MSP", Name: "admin", OU: "admin"},
	}
	trainers = []fakeledger.Identity{
		{MSPID: "Org1MSP", Name: "trainer", OU: "client", Attrs: map[string]string{"role": "trainer"}},
		{MSPID: "Org1MSP", Name: "trainer2", OU: "client", Attrs: map[string]string{"role": "trainer"}},
		{MSPID: "Org2MSP", Name: "trainer", OU: "client", Attrs: map[string]string{"role": "trainer"}},
		{MSPID: "Org3MSP", Name: "trainer", OU: "client", Attrs: map[string]string{"role": "trainer"}},
	}
	d = func(c string) string { return strings.Repeat(c, 64) }
)

func key(i fakeledger.Identity) string { return i.MSPID + "/" + i.Name }

// consortiumWithTokens: three members with 1000 tokens each and a registered base model.
func consortiumWithTokens(t *testing.T) *fakeledger.Stub {
	t.Helper()
	stub := fakeledger.NewStub()
	for _, a := range admins {
		if _, err := fakeledger.Submit(stub, a, func(ctx fakeledger.Ctx) (*consortium.Member, error) {
			m, err := consortium.New().Join(ctx, a.MSPID)
			if err == nil {
				err = token.Move(ctx, a.MSPID, 1000)
			}
			return m, err
		}); err != nil {
			t.Fatal(err)
		}
	}
	req, _ := json.Marshal(registry.RegistrationRequest{Name: "base", Version: "1", ManifestDigest: d("a"),
		Weights: registry.Weights{Digest: d("b"), Files: 1}, TrainingOrgs: []string{"Org1MSP"}})
	if _, err := fakeledger.Submit(stub, trainers[0], func(ctx fakeledger.Ctx) (*registry.ModelVersion, error) {
		return registry.New().Register(ctx, string(req))
	}); err != nil {
		t.Fatal(err)
	}
	return stub
}

func task(rounds int) string {
	raw, _ := json.Marshal(TaskRequest{ID: "t1", InitialModel: "base@1", Rounds: rounds, MinParticipants: 3, Stake: 100,
		RewardPerRound: 60, CommitSeconds: 60, RevealSeconds: 60, AggregateSeconds: 60, Rule: "median"})
	return string(raw)
}

func balance(t *testing.T, stub *fakeledger.Stub, msp string) int64 {
	t.Helper()
	b, err := token.BalanceOf(fakeledger.Query(stub, admins[0]), msp)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestARoundRewardsHonestParticipantsAndSlashesTheFlaggedAndTheSilent(t *testing.T) {
	stub := consortiumWithTokens(t)
	c := New()
	if _, err := fakeledger.Submit(stub, admins[0], func(ctx fakeledger.Ctx) (*Task, error) { return c.CreateTask(ctx, task(1)) }); err != nil {
		t.Fatal(err)
	}
	for _, tr := range trainers {
		if _, err := fakeledger.Submit(stub, tr, func(ctx fakeledger.Ctx) (*Task, error) { return c.Join(ctx, "t1") }); err != nil {
			t.Fatal(err)
		}
	}
	if balance(t, stub, "Org1MSP") != 1000-60-200 {
		t.Fatalf("org1 should have escrowed 60 and staked 2x100, has %d", balance(t, stub, "Org1MSP"))
	}
	if _, err := fakeledger.Submit(stub, admins[1], func(ctx fakeledger.Ctx) (*Task, error) { return c.Start(ctx, "t1") }); err != nil {
		t.Fatal(err)
	}
	for i, tr := range trainers {
		if _, err := fakeledger.Submit(stub, tr, func(ctx fakeledger.Ctx) (*Commitment, error) {
			return c.Commit(ctx, "t1", 1, d(string(rune('c'+i))), 10)
		}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := fakeledger.Submit(stub, trainers[0], func(ctx fakeledger.Ctx) (*Commitment, error) { return c.Commit(ctx, "t1", 1, d("z"), 10) }); err == nil {
		t.Fatal("a second, different commitment was accepted")
	}
	if _, err := fakeledger.Submit(stub, admins[0], func(ctx fakeledger.Ctx) (*Task, error) { return c.Advance(ctx, "t1") }); err != nil {
		t.Fatal(err)
	}
	if _, err := fakeledger.Submit(stub, trainers[0], func(ctx fakeledger.Ctx) (*Commitment, error) { return c.Reveal(ctx, "t1", 1, d("f"), "https://x/blob") }); err == nil {
		t.Fatal("a reveal not matching its commitment was accepted")
	}
	for i, tr := range trainers[:3] { // trainers[3] (org3) never reveals
		if _, err := fakeledger.Submit(stub, tr, func(ctx fakeledger.Ctx) (*Commitment, error) {
			return c.Reveal(ctx, "t1", 1, d(string(rune('c'+i))), "https://org/blob")
		}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := fakeledger.Submit(stub, admins[0], func(ctx fakeledger.Ctx) (*Task, error) { return c.Advance(ctx, "t1") }); err == nil {
		t.Fatal("REVEAL ended before its deadline with a reveal missing")
	}
	stub.Time = stub.Time.Add(2 * time.Minute)
	if _, err := fakeledger.Submit(stub, admins[0], func(ctx fakeledger.Ctx) (*Task, error) { return c.Advance(ctx, "t1") }); err != nil {
		t.Fatal(err)
	}
	scores := `{"Org1MSP/trainer":3,"Org1MSP/trainer2":1,"Org2MSP/trainer":2,"Org3MSP/trainer":0}`
	flag := []string{key(trainers[1])}
	post := func(admin fakeledger.Identity, digest string, flagged []string) {
		t.Helper()
		if _, err := fakeledger.Submit(stub, admin, func(ctx fakeledger.Ctx) (*AggregatePost, error) {
			return c.PostAggregate(ctx, "t1", 1, d(digest), scores, flagged)
		}); err != nil {
			t.Fatal(err)
		}
	}
	advance := func() error {
		_, err := fakeledger.Submit(stub, admins[2], func(ctx fakeledger.Ctx) (*Task, error) { return c.Advance(ctx, "t1") })
		return err
	}
	post(admins[0], "9", flag)
	post(admins[2], "8", nil)
	if err := advance(); err == nil || !strings.Contains(err.Error(), "no quorum yet") {
		t.Fatalf("one post per digest must not finalize: %v", err)
	}
	if _, err := fakeledger.Submit(stub, admins[0], func(ctx fakeledger.Ctx) (*AggregatePost, error) {
		return c.PostAggregate(ctx, "t1", 1, d("7"), scores, flag)
	}); err == nil || !strings.Contains(err.Error(), "already posted") {
		t.Fatalf("a second post by one org was accepted: %v", err)
	}
	post(admins[1], "9", flag)
	if err := advance(); err != nil {
		t.Fatalf("two of three orgs agreeing must finalize: %v", err)
	}
	r, err := c.GetRound(fakeledger.Query(stub, admins[0]), "t1", 1)
	if err != nil || r.Status != "FINALIZED" {
		t.Fatalf("%+v %v", r, err)
	}
	if !slices.Equal(r.Disagreeing, []string{"Org3MSP"}) || !slices.Equal(r.Slashed, []string{key(trainers[1]), key(trainers[3])}) {
		t.Fatalf("unexpected result %+v", r)
	}
	// Pool: 60 reward + 2 slashed stakes of 100 = 260, split 3:2 between the honest.
	if r.Rewards[key(trainers[0])] != 156 || r.Rewards[key(trainers[2])] != 104 {
		t.Fatalf("rewards %v", r.Rewards)
	}
	tk, _ := c.GetTask(fakeledger.Query(stub, admins[0]), "t1")
	if tk.Status != StatusDone || tk.Escrow != 0 {
		t.Fatalf("task should be done with an empty escrow: %+v", tk)
	}
	// org1: 1000-60-200 +156 reward +100 stake back (trainer2's was slashed); org2: 1000-100+104+100; org3: 1000-100.
	if balance(t, stub, "Org1MSP") != 996 || balance(t, stub, "Org2MSP") != 1104 || balance(t, stub, "Org3MSP") != 900 {
		t.Fatalf("balances %d %d %d", balance(t, stub, "Org1MSP"), balance(t, stub, "Org2MSP"), balance(t, stub, "Org3MSP"))
	}
}

func TestAMissedDeadlineClosesTheRoundWithAReason(t *testing.T) {
	stub := consortiumWithTokens(t)
	c := New()
	if _, err := fakeledger.Submit(stub, admins[0], func(ctx fakeledger.Ctx) (*Task, error) { return c.CreateTask(ctx, task(2)) }); err != nil {
		t.Fatal(err)
	}
	for _, tr := range trainers {
		if _, err := fakeledger.Submit(stub, tr, func(ctx fakeledger.Ctx) (*Task, error) { return c.Join(ctx, "t1") }); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := fakeledger.Submit(stub, admins[0], func(ctx fakeledger.Ctx) (*Task, error) { return c.Start(ctx, "t1") }); err != nil {
		t.Fatal(err)
	}
	if _, err := fakeledger.Submit(stub, trainers[0], func(ctx fakeledger.Ctx) (*Commitment, error) { return c.Commit(ctx, "t1", 1, d("c"), 10) }); err != nil {
		t.Fatal(err)
	}
	stub.Time = stub.Time.Add(2 * time.Minute)
	if _, err := fakeledger.Submit(stub, trainers[1], func(ctx fakeledger.Ctx) (*Commitment, error) { return c.Commit(ctx, "t1", 1, d("d"), 10) }); err == nil || !strings.Contains(err.Error(), "ended") {
		t.Fatalf("a late commitment was accepted: %v", err)
	}
	tk, err := fakeledger.Submit(stub, admins[2], func(ctx fakeledger.Ctx) (*Task, error) { return c.Advance(ctx, "t1") })
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.GetRound(fakeledger.Query(stub, admins[0]), "t1", 1)
	if err != nil || r.Status != "CLOSED" || !strings.Contains(r.Reason, "only 1 of the 3") {
		t.Fatalf("%+v %v", r, err)
	}
	if tk.Round != 2 || tk.Phase != PhaseCommit {
		t.Fatalf("the task should go on with round 2: %+v", tk)
	}
}

func TestBadTasksAndJoinsAreRefused(t *testing.T) {
	stub := consortiumWithTokens(t)
	c := New()
	bad := strings.Replace(task(1), `"median"`, `"mean-ish"`, 1)
	if _, err := fakeledger.Submit(stub, admins[0], func(ctx fakeledger.Ctx) (*Task, error) { return c.CreateTask(ctx, bad) }); err == nil || !strings.Contains(err.Error(), "rule") {
		t.Fatalf("bad rule accepted: %v", err)
	}
	unknown := strings.Replace(task(1), `"base@1"`, `"nope@1"`, 1)
	if _, err := fakeledger.Submit(stub, admins[0], func(ctx fakeledger.Ctx) (*Task, error) { return c.CreateTask(ctx, unknown) }); err == nil {
		t.Fatal("an unregistered initial model was accepted")
	}
	if _, err := fakeledger.Submit(stub, trainers[0], func(ctx fakeledger.Ctx) (*Task, error) { return c.CreateTask(ctx, task(1)) }); err == nil {
		t.Fatal("a trainer created a task")
	}
	if _, err := fakeledger.Submit(stub, admins[0], func(ctx fakeledger.Ctx) (*Task, error) { return c.CreateTask(ctx, task(1)) }); err != nil {
		t.Fatal(err)
	}
	if _, err := fakeledger.Submit(stub, admins[1], func(ctx fakeledger.Ctx) (*Task, error) { return c.Join(ctx, "t1") }); err == nil {
		t.Fatal("an admin without the trainer role joined")
	}
	if _, err := fakeledger.Submit(stub, admins[0], func(ctx fakeledger.Ctx) (*Task, error) { return c.Start(ctx, "t1") }); err == nil {
		t.Fatal("a task without participants started")
	}
}
