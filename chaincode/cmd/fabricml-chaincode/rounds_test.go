package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/fabricml/fabricml/chaincode/federation"
	"github.com/fabricml/fabricml/chaincode/internal/fakeledger"
	"github.com/fabricml/fabricml/chaincode/internal/testkit"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
	"github.com/fabricml/fabricml/chaincode/registry"
)

var (
	admins   = fakeledger.Admins(3)
	trainers = []fakeledger.Identity{fakeledger.Trainer("Org1MSP"), fakeledger.Trainer("Org2MSP"), fakeledger.Trainer("Org3MSP")}
	hexOf    = func(c string) string { return strings.Repeat(c, 64) }
)

// finalizedRound: task "Task-7" (Org1 and Org2 train; Org3 is a member outside it)
// whose round 1 ended with both orgs agreeing on aggregate "a...".
func finalizedRound(t *testing.T) (*fakeledger.Stub, *registry.Contract) {
	t.Helper()
	stub := testkit.Consortium(t, admins...)
	reg := registry.NewWithRounds(federationRound)
	initial, _ := json.Marshal(registry.RegistrationRequest{Name: "base", Version: "1", ManifestDigest: hexOf("a"),
		Weights: registry.Weights{Digest: hexOf("b"), Files: 1}, TrainingOrgs: []string{"Org1MSP"}})
	fakeledger.Must(t, stub, trainers[0], func(ctx fakeledger.Ctx) (*registry.ModelVersion, error) { return reg.Register(ctx, string(initial)) })
	finalizeRoundOne(t, stub, "Task-7")
	return stub, reg
}

// finalizeRoundOne runs round 1 of a new task of Org1's and Org2's trainers to an agreed aggregate.
func finalizeRoundOne(t *testing.T, stub *fakeledger.Stub, id string) {
	t.Helper()
	fed := federation.New()
	task, _ := json.Marshal(federation.TaskRequest{ID: id, InitialModel: "base@1", Rounds: 2, MinParticipants: 2,
		CommitSeconds: 60, RevealSeconds: 60, AggregateSeconds: 60, Rule: "fedavg"})
	fakeledger.Must(t, stub, admins[0], func(ctx fakeledger.Ctx) (*federation.Task, error) { return fed.CreateTask(ctx, string(task)) })
	for _, tr := range trainers[:2] {
		fakeledger.Must(t, stub, tr, func(ctx fakeledger.Ctx) (*federation.Task, error) { return fed.Join(ctx, id) })
	}
	fakeledger.Must(t, stub, admins[0], func(ctx fakeledger.Ctx) (*federation.Task, error) { return fed.Start(ctx, id) })
	for _, tr := range trainers[:2] {
		fakeledger.Must(t, stub, tr, func(ctx fakeledger.Ctx) (*federation.Commitment, error) {
			// Every update is new: the contract refuses a replay of any task's update.
			update := fmt.Sprintf("%x", sha256.Sum256([]byte(id+"/"+tr.MSPID)))
			return fed.Commit(ctx, id, 1, update, 10, "https://store.example/"+update)
		})
	}
	scores := `{"Org1MSP/trainer": 500, "Org2MSP/trainer": 500}`
	for _, tr := range trainers[:2] {
		fakeledger.Must(t, stub, tr, func(ctx fakeledger.Ctx) (*federation.AggregatePost, error) {
			return fed.PostAggregate(ctx, id, 1, hexOf("a"), scores, []string{}, []string{})
		})
	}
	fakeledger.Must(t, stub, admins[0], func(ctx fakeledger.Ctx) (*federation.RoundResult, error) { return fed.Settle(ctx, id, 1) })
	if r, err := fed.GetRound(fakeledger.Query(stub, admins[2]), id, 1); err != nil || r.Status != "FINALIZED" {
		t.Fatalf("round 1 did not finalize: %+v %v", r, err)
	}
}

func roundModel(mutate func(*registry.RegistrationRequest)) string {
	r := registry.RegistrationRequest{Name: "fed-task-7", Version: "r1", ManifestDigest: hexOf("d"), Weights: registry.Weights{Digest: hexOf("e"), Files: 1},
		Parents: []string{"base@1"}, Round: "Task-7/1", AggregateDigest: hexOf("a"), TrainingOrgs: []string{"Org1MSP", "Org2MSP"}}
	mutate(&r)
	raw, _ := json.Marshal(r)
	return string(raw)
}

// The attacks: a trainer pre-registers fed-<task>@r<n> with weights of its choice (or
// for a round that has not ended, or under another round's name) so that the honest
// registrar is refused; an agreeing org that is not the registrar squats the name.
func TestARoundModelIsAcceptedOnlyAsItsFinalizedRound(t *testing.T) {
	stub, reg := finalizedRound(t)
	register := func(mutate func(*registry.RegistrationRequest)) func(fakeledger.Ctx) error {
		return func(ctx fakeledger.Ctx) error { _, err := reg.Register(ctx, roundModel(mutate)); return err }
	}
	same := func(*registry.RegistrationRequest) {}
	fakeledger.CheckRefusals(t, stub, []fakeledger.Refusal{
		fakeledger.R("an aggregate other than the agreed one", trainers[0], register(func(r *registry.RegistrationRequest) { r.AggregateDigest = hexOf("f") }), ledgerutil.Conflict),
		fakeledger.R("a round that has not ended", trainers[0], register(func(r *registry.RegistrationRequest) { r.Version, r.Round = "r2", "Task-7/2" }), ledgerutil.NotFound),
		fakeledger.R("a task that does not exist", trainers[0], register(func(r *registry.RegistrationRequest) { r.Name, r.Round = "fed-task-8", "Task-8/1" }), ledgerutil.NotFound),
		fakeledger.R("another round's version", trainers[0], register(func(r *registry.RegistrationRequest) { r.Version = "r2" }), ledgerutil.Invalid),
		fakeledger.R("another task's name", trainers[0], register(func(r *registry.RegistrationRequest) { r.Name = "fed-task-9" }), ledgerutil.Invalid),
		fakeledger.R("an agreeing org that is not the registrar", trainers[1], register(func(r *registry.RegistrationRequest) { r.TrainingOrgs = []string{"Org2MSP"} }), ledgerutil.Forbidden),
		fakeledger.R("a member outside the task", trainers[2], register(func(r *registry.RegistrationRequest) { r.TrainingOrgs = []string{"Org3MSP"} }), ledgerutil.Forbidden),
		fakeledger.R("a training org outside the task", trainers[0], register(func(r *registry.RegistrationRequest) { r.TrainingOrgs = []string{"Org1MSP", "Org3MSP"} }), ledgerutil.Forbidden),
		fakeledger.R("a fed- name without its round", trainers[0], register(func(r *registry.RegistrationRequest) { r.Round, r.AggregateDigest = "", "" }), ledgerutil.Forbidden),
	})
	m := fakeledger.Must(t, stub, trainers[0], func(ctx fakeledger.Ctx) (*registry.ModelVersion, error) { return reg.Register(ctx, roundModel(same)) })
	if len(m.PendingConfirmations) != 0 || m.Round != "Task-7/1" {
		t.Fatalf("the participants joined the task: no confirmation is pending, got %+v", m)
	}
	for _, a := range admins[:2] {
		if m = fakeledger.Must(t, stub, a, func(ctx fakeledger.Ctx) (*registry.ModelVersion, error) { return reg.Approve(ctx, "fed-task-7@r1") }); m.Status != registry.StatusApproved && a.MSPID == "Org2MSP" {
			t.Fatalf("a majority approved the round model: %+v", m)
		}
	}
	lineage, err := reg.Lineage(fakeledger.Query(stub, admins[2]), "fed-task-7@r1")
	if err != nil || lineage.Rounds["fed-task-7@r1"] != "Task-7/1" {
		t.Fatalf("%+v %v", lineage, err)
	}
}

func TestTheRoundModelNameMatchesTheAgents(t *testing.T) {
	// fabricml.federation.agent.model_name: lower case, at most 64 characters.
	if got := registry.RoundModelName("Task-7"); got != "fed-task-7" {
		t.Fatal(got)
	}
	if got := registry.RoundModelName(strings.Repeat("A", 64)); got != "fed-"+strings.Repeat("a", 60) {
		t.Fatal(got)
	}
}

// Task ids that differ only in case share a round model name: the first task keeps it,
// the other's registrar is refused rather than mixing two tasks' models under one name.
func TestRoundModelsOfTwoTasksNeverShareAName(t *testing.T) {
	stub, reg := finalizedRound(t)
	fakeledger.Must(t, stub, trainers[0], func(ctx fakeledger.Ctx) (*registry.ModelVersion, error) {
		return reg.Register(ctx, roundModel(func(*registry.RegistrationRequest) {}))
	})
	finalizeRoundOne(t, stub, "task-7")
	fakeledger.CheckRefusals(t, stub, []fakeledger.Refusal{
		fakeledger.R("the other task's round under the same name", trainers[0], func(ctx fakeledger.Ctx) error {
			_, err := reg.Register(ctx, roundModel(func(r *registry.RegistrationRequest) { r.Round = "task-7/1" }))
			return err
		}, ledgerutil.Conflict),
	})
}
