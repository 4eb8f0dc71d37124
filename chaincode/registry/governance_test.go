package registry

import (
	"slices"
	"testing"

	"github.com/fabricml/fabricml/chaincode/internal/fakeledger"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

// approved is a consortium of three with m@1 registered by Org1 and approved by Org1 and Org2.
func approved(t *testing.T) *fakeledger.Stub {
	t.Helper()
	stub := consortiumOfThree(t)
	register(t, stub, "m@1")
	for _, a := range admins[:2] {
		if _, err := fakeledger.Submit(stub, a, func(ctx fakeledger.Ctx) (*ModelVersion, error) { return New().Approve(ctx, "m@1") }); err != nil {
			t.Fatal(err)
		}
	}
	return stub
}

func deployable(t *testing.T, stub *fakeledger.Stub) *Deployability {
	t.Helper()
	d, err := New().Deployable(fakeledger.Query(stub, user1), "m@1")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// The attack: one org alone revokes another org's approved model for good, which stops
// every org's anchoring. Now its vote waits for a majority of the members.
func TestOneOrgAloneCannotRevokeAnApprovedModel(t *testing.T) {
	stub := approved(t)
	c := New()
	m, err := fakeledger.Submit(stub, admins[2], func(ctx fakeledger.Ctx) (*ModelVersion, error) { return c.Revoke(ctx, "m@1", "I say so") })
	if err != nil || m.Status != StatusApproved || len(m.RevocationVotes) != 1 || m.Revocation != nil {
		t.Fatalf("one vote of three revoked the version: %+v %v", m, err)
	}
	if _, ok := stub.Events["ModelRevoked"]; ok || stub.Events["ModelRevocationVoted"] == nil {
		t.Fatalf("a lone vote must announce a vote, not a revocation: %v", stub.Events)
	}
	if !deployable(t, stub).Deployable {
		t.Fatal("a lone revocation vote stopped the version")
	}
	again := fakeledger.Unchanged(t, stub, admins[2], func(ctx fakeledger.Ctx) (*ModelVersion, error) { return c.Revoke(ctx, "m@1", "again") })
	if len(again.RevocationVotes) != 1 {
		t.Fatalf("a second vote of the same org counted: %+v", again.RevocationVotes)
	}
	m, err = fakeledger.Submit(stub, admins[0], func(ctx fakeledger.Ctx) (*ModelVersion, error) { return c.Revoke(ctx, "m@1", "confirmed bias") })
	if err != nil || m.Status != StatusRevoked || m.Revocation.MSPID != "Org1MSP" || stub.Events["ModelRevoked"] == nil {
		t.Fatalf("a majority of votes must revoke: %+v %v", m, err)
	}
	if deployable(t, stub).Deployable {
		t.Fatal("a revoked version is deployable")
	}
}

// An org stops its own use of a version at once; the others' use goes on.
func TestAnOrgSuspendsOnlyItsOwnUseOfAVersion(t *testing.T) {
	stub := approved(t)
	c := New()
	s, err := fakeledger.Submit(stub, admins[1], func(ctx fakeledger.Ctx) (*Suspension, error) { return c.Suspend(ctx, "m@1", "our audit is pending") })
	if err != nil || s.MSPID != "Org2MSP" || stub.Events["ModelSuspended"] == nil {
		t.Fatalf("%+v %v", s, err)
	}
	d := deployable(t, stub)
	if !d.Deployable || d.Status != StatusApproved || !slices.Equal(d.SuspendedBy, []string{"Org2MSP"}) {
		t.Fatalf("a suspension must be the suspending org's only: %+v", d)
	}
	for msp, want := range map[string]bool{"Org1MSP": false, "Org2MSP": true} {
		if got, err := SuspendedBy(fakeledger.Query(stub, user1), "m@1", msp); err != nil || got != want {
			t.Fatalf("SuspendedBy %s = %v %v, want %v", msp, got, err, want)
		}
	}
	fakeledger.CheckRefusals(t, stub, []fakeledger.Refusal{
		fakeledger.R("suspending twice", admins[1], func(ctx fakeledger.Ctx) error { _, err := c.Suspend(ctx, "m@1", "again"); return err }, ledgerutil.AlreadyDone),
		fakeledger.R("resuming another org's suspension", admins[0], func(ctx fakeledger.Ctx) error { _, err := c.Resume(ctx, "m@1"); return err }, ledgerutil.AlreadyDone),
	})
	if _, err := fakeledger.Submit(stub, admins[1], func(ctx fakeledger.Ctx) (*Suspension, error) { return c.Resume(ctx, "m@1") }); err != nil || stub.Events["ModelResumed"] == nil {
		t.Fatal(err)
	}
	if d := deployable(t, stub); len(d.SuspendedBy) != 0 {
		t.Fatalf("resumed, still suspended by %v", d.SuspendedBy)
	}
}

// The attack: Org1 registers a version naming Org2 as a training org, without Org2
// knowing, and gets it approved on Org2's name.
func TestNamingAnotherOrgAsTrainerNeedsThatOrgsConfirmation(t *testing.T) {
	stub := consortiumOfThree(t)
	m := register(t, stub, "m@1", func(r *RegistrationRequest) { r.TrainingOrgs = []string{"Org1MSP", "Org2MSP"} })
	if !slices.Equal(m.PendingConfirmations, []string{"Org2MSP"}) || len(m.Confirmations) != 0 {
		t.Fatalf("pending %v, confirmations %v", m.PendingConfirmations, m.Confirmations)
	}
	c := New()
	approve := func(ctx fakeledger.Ctx) error { _, err := c.Approve(ctx, "m@1"); return err }
	fakeledger.CheckRefusals(t, stub, []fakeledger.Refusal{
		fakeledger.R("approving before the named org confirmed", admins[0], approve, ledgerutil.WrongPhase),
		fakeledger.R("approving by the named org before it confirmed", admins[1], approve, ledgerutil.WrongPhase),
		fakeledger.R("deprecating by an org that did not confirm", admins[1], func(ctx fakeledger.Ctx) error { _, err := c.Deprecate(ctx, "m@1", "x"); return err }, ledgerutil.Forbidden),
		fakeledger.R("an org not named confirms", admins[2], func(ctx fakeledger.Ctx) error { _, err := c.ConfirmTraining(ctx, "m@1"); return err }, ledgerutil.Forbidden),
	})
	fakeledger.Unchanged(t, stub, trainer1, func(ctx fakeledger.Ctx) (*ModelVersion, error) { return c.ConfirmTraining(ctx, "m@1") })
	m, err := fakeledger.Submit(stub, trainer2, func(ctx fakeledger.Ctx) (*ModelVersion, error) { return c.ConfirmTraining(ctx, "m@1") })
	if err != nil || len(m.PendingConfirmations) != 0 || len(m.Confirmations) != 1 || m.Confirmations[0].MSPID != "Org2MSP" {
		t.Fatalf("%+v %v", m, err)
	}
	fakeledger.Unchanged(t, stub, trainer2, func(ctx fakeledger.Ctx) (*ModelVersion, error) { return c.ConfirmTraining(ctx, "m@1") })
	for _, a := range admins[:2] {
		if _, err := fakeledger.Submit(stub, a, func(ctx fakeledger.Ctx) (*ModelVersion, error) { return c.Approve(ctx, "m@1") }); err != nil {
			t.Fatal(err)
		}
	}
	if !deployable(t, stub).Deployable {
		t.Fatal("a confirmed and approved version is not deployable")
	}
}

// Approvals of an org that left the consortium stop counting (revocation votes likewise).
func TestApprovalsOfAnOrgThatLeftNoLongerCount(t *testing.T) {
	stub := consortiumOfThree(t)
	register(t, stub, "m@1")
	c := New()
	if _, err := fakeledger.Submit(stub, admins[2], func(ctx fakeledger.Ctx) (*ModelVersion, error) { return c.Approve(ctx, "m@1") }); err != nil {
		t.Fatal(err)
	}
	memberKey, err := ledgerutil.Key(fakeledger.Query(stub, user1), "member", "Org3MSP")
	if err != nil {
		t.Fatal(err)
	}
	delete(stub.State, memberKey) // Org3 is no longer a member (the consortium's record)
	m, err := fakeledger.Submit(stub, admins[0], func(ctx fakeledger.Ctx) (*ModelVersion, error) { return c.Approve(ctx, "m@1") })
	if err != nil || m.Status != StatusRegistered {
		t.Fatalf("a departed org's approval counted toward 2 of 2: %+v %v", m, err)
	}
	if m, _ = fakeledger.Submit(stub, admins[1], func(ctx fakeledger.Ctx) (*ModelVersion, error) { return c.Approve(ctx, "m@1") }); m.Status != StatusApproved {
		t.Fatalf("both members approved: %+v", m)
	}
}
