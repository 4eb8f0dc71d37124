package registry

import (
	"testing"

	"github.com/fabricml/fabricml/chaincode/internal/fakeledger"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

// A ledger with m@1 (registered, with a confidential digest), r@1 (revoked) and
// d@1 (deprecated), all trained by Org1MSP.
func registryWithHistory(t *testing.T) *fakeledger.Stub {
	t.Helper()
	stub := consortiumOfThree(t)
	register(t, stub, "m@1", func(r *RegistrationRequest) { r.ConfidentialDigest = digestA })
	register(t, stub, "r@1")
	register(t, stub, "d@1")
	c := New()
	for _, a := range admins[1:] { // a majority of the three members votes to revoke
		if _, err := fakeledger.Submit(stub, a, func(ctx fakeledger.Ctx) (*ModelVersion, error) { return c.Revoke(ctx, "r@1", "bias") }); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := fakeledger.Submit(stub, admins[0], func(ctx fakeledger.Ctx) (*ModelVersion, error) { return c.Deprecate(ctx, "d@1", "old") }); err != nil {
		t.Fatal(err)
	}
	return stub
}

func TestRegistryRefusalsCarryTheirCode(t *testing.T) {
	stub := registryWithHistory(t)
	c := New()
	call := func(f func(fakeledger.Ctx) (*ModelVersion, error)) func(fakeledger.Ctx) error {
		return func(ctx fakeledger.Ctx) error { _, err := f(ctx); return err }
	}
	approve := func(ref string) func(fakeledger.Ctx) error {
		return call(func(ctx fakeledger.Ctx) (*ModelVersion, error) { return c.Approve(ctx, ref) })
	}
	revoke := func(ref, reason string) func(fakeledger.Ctx) error {
		return call(func(ctx fakeledger.Ctx) (*ModelVersion, error) { return c.Revoke(ctx, ref, reason) })
	}
	deprecate := func(ref string) func(fakeledger.Ctx) error {
		return call(func(ctx fakeledger.Ctx) (*ModelVersion, error) { return c.Deprecate(ctx, ref, "old") })
	}
	vote := func(name, rule string) func(fakeledger.Ctx) error {
		return func(ctx fakeledger.Ctx) error { _, err := c.VoteDeploymentPolicy(ctx, name, rule); return err }
	}
	list := func(name string, size int) func(fakeledger.Ctx) error {
		return func(ctx fakeledger.Ctx) error { _, err := c.List(ctx, name, size, ""); return err }
	}
	putConfidential := func(ref string) func(fakeledger.Ctx) error {
		return func(ctx fakeledger.Ctx) error { return c.PutConfidential(ctx, ref) }
	}
	getConfidential := func(ref string) func(fakeledger.Ctx) error {
		return func(ctx fakeledger.Ctx) error { _, err := c.GetConfidential(ctx, ref); return err }
	}
	confirm := func(ref string) func(fakeledger.Ctx) error {
		return call(func(ctx fakeledger.Ctx) (*ModelVersion, error) { return c.ConfirmTraining(ctx, ref) })
	}
	register := func(name, version string, mutate func(*RegistrationRequest)) func(fakeledger.Ctx) error {
		if mutate == nil {
			mutate = func(*RegistrationRequest) {}
		}
		return call(func(ctx fakeledger.Ctx) (*ModelVersion, error) {
			return c.Register(ctx, request(name, version, mutate))
		})
	}
	suspend := func(ref string) func(fakeledger.Ctx) error {
		return func(ctx fakeledger.Ctx) error { _, err := c.Suspend(ctx, ref, "drift"); return err }
	}
	fakeledger.CheckRefusals(t, stub, []fakeledger.Refusal{
		fakeledger.R("a client approves", trainer1, approve("m@1"), ledgerutil.Forbidden),
		fakeledger.R("an outsider approves", outsider, approve("m@1"), ledgerutil.Forbidden),
		fakeledger.R("approving a malformed reference", admins[0], approve("m"), ledgerutil.Invalid),
		fakeledger.R("approving an unknown version", admins[0], approve("m@9"), ledgerutil.NotFound),
		fakeledger.R("approving a revoked version", admins[0], approve("r@1"), ledgerutil.Conflict),
		fakeledger.R("approving a deprecated version", admins[0], approve("d@1"), ledgerutil.Conflict),
		fakeledger.R("revoking without a reason", admins[1], revoke("m@1", ""), ledgerutil.Invalid),
		fakeledger.R("revoking twice", admins[1], revoke("r@1", "again"), ledgerutil.AlreadyDone),
		fakeledger.R("a client revokes", user1, revoke("m@1", "no"), ledgerutil.Forbidden),
		fakeledger.R("deprecating by an org that did not train it", admins[1], deprecate("m@1"), ledgerutil.Forbidden),
		fakeledger.R("deprecating twice", admins[0], deprecate("d@1"), ledgerutil.AlreadyDone),
		fakeledger.R("deprecating a revoked version", admins[0], deprecate("r@1"), ledgerutil.Conflict),
		fakeledger.R("a client votes a policy", user1, vote("m", "ALL"), ledgerutil.Forbidden),
		fakeledger.R("a policy for a malformed name", admins[0], vote("M M", "ALL"), ledgerutil.Invalid),
		fakeledger.R("an unknown rule", admins[0], vote("m", "MOST"), ledgerutil.Invalid),
		fakeledger.R("a rule needing more orgs than exist", admins[0], vote("m", "AT_LEAST_4"), ledgerutil.Invalid),
		fakeledger.R("an outsider votes a policy", outsider, vote("m", "ALL"), ledgerutil.Forbidden),
		fakeledger.R("a page of zero", user1, list("", 0), ledgerutil.Invalid),
		fakeledger.R("a page too large", user1, list("", 201), ledgerutil.Invalid),
		fakeledger.R("listing a malformed name", user1, list("M M", 10), ledgerutil.Invalid),
		fakeledger.R("another org stores confidential data", admins[1], putConfidential("m@1"), ledgerutil.Forbidden),
		fakeledger.R("confidential data for a version without a digest", trainer1, putConfidential("r@1"), ledgerutil.Conflict),
		fakeledger.R("confidential data not matching its digest", trainer1, putConfidential("m@1"), ledgerutil.Invalid),
		fakeledger.R("confidential data of a version without any", user1, getConfidential("r@1"), ledgerutil.NotFound),
		fakeledger.R("confidential data not stored on this peer", auditor1, getConfidential("m@1"), ledgerutil.NotFound),
		fakeledger.R("an outsider revokes", outsider, revoke("m@1", "no"), ledgerutil.Forbidden),
		fakeledger.R("a client confirms training", user1, confirm("m@1"), ledgerutil.Forbidden),
		fakeledger.R("an org not named confirms training", trainer2, confirm("m@1"), ledgerutil.Forbidden),
		fakeledger.R("a name reserved for round models", trainer1, register("fed-x", "r1", nil), ledgerutil.Forbidden),
		fakeledger.R("a round reference on another name", trainer1, register("m", "9", func(r *RegistrationRequest) { r.Round, r.AggregateDigest = "x/1", digestA }), ledgerutil.Invalid),
		fakeledger.R("a malformed round reference", trainer1, register("fed-x", "r1", func(r *RegistrationRequest) { r.Round, r.AggregateDigest = "x/round-1", digestA }), ledgerutil.Invalid),
		fakeledger.R("a round model without its aggregate", trainer1, register("fed-x", "r1", func(r *RegistrationRequest) { r.Round = "x/1" }), ledgerutil.Invalid),
		fakeledger.R("an aggregate without a round", trainer1, register("m", "9", func(r *RegistrationRequest) { r.AggregateDigest = digestA }), ledgerutil.Invalid),
		fakeledger.R("a round model in a build without rounds", trainer1, register("fed-x", "r1", func(r *RegistrationRequest) { r.Round, r.AggregateDigest = "x/1", digestA }), ledgerutil.Internal),
		fakeledger.R("a training org listed twice", trainer1, register("m", "9", func(r *RegistrationRequest) { r.TrainingOrgs = []string{"Org1MSP", "Org1MSP"} }), ledgerutil.Invalid),
		fakeledger.R("a client suspends", user1, suspend("m@1"), ledgerutil.Forbidden),
		fakeledger.R("an outsider suspends", outsider, suspend("m@1"), ledgerutil.Forbidden),
		fakeledger.R("suspending an unknown version", admins[1], suspend("m@9"), ledgerutil.NotFound),
		fakeledger.R("suspending without a reason", admins[1], func(ctx fakeledger.Ctx) error { _, err := c.Suspend(ctx, "m@1", ""); return err }, ledgerutil.Invalid),
		fakeledger.R("resuming what was not suspended", admins[1], func(ctx fakeledger.Ctx) error { _, err := c.Resume(ctx, "m@1"); return err }, ledgerutil.AlreadyDone),
		fakeledger.R("the lineage of an unknown version", user1, func(ctx fakeledger.Ctx) error { _, err := c.Lineage(ctx, "x@1"); return err }, ledgerutil.NotFound),
		fakeledger.R("the history of an unknown version", user1, func(ctx fakeledger.Ctx) error { _, err := c.History(ctx, "x@1"); return err }, ledgerutil.NotFound),
	})
}

// An org's second approval is the first one, returned unchanged.
func TestApprovingAgainReturnsTheRecordUnchanged(t *testing.T) {
	stub := registryWithHistory(t)
	c := New()
	first, err := fakeledger.Submit(stub, admins[1], func(ctx fakeledger.Ctx) (*ModelVersion, error) { return c.Approve(ctx, "m@1") })
	if err != nil {
		t.Fatal(err)
	}
	again := fakeledger.Unchanged(t, stub, admins[1], func(ctx fakeledger.Ctx) (*ModelVersion, error) { return c.Approve(ctx, "m@1") })
	if len(again.Approvals) != 1 || again.Approvals[0] != first.Approvals[0] {
		t.Fatalf("approvals %+v, want the first one only", again.Approvals)
	}
}
