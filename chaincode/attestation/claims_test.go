package attestation

import (
	"bytes"
	"maps"
	"testing"

	"github.com/fabricml/fabricml/chaincode/internal/fakeledger"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
	"github.com/fabricml/fabricml/chaincode/registry"
)

// answered: each org's service answered input "e" with m@1 in its batch 1 (output "f",
// Org3's "0"), and Org1 opened claim c1 for 1250.00 with k=2.
type answered struct {
	stub     *fakeledger.Stub
	services []*service
	receipts []Receipt
	proofs   []string
}

func answer(t *testing.T) *answered {
	t.Helper()
	a := &answered{stub: members(t)}
	for i, msp := range []string{"Org1MSP", "Org2MSP", "Org3MSP"} {
		svc := newService(t, msp)
		output := hexOf("f")
		if i == 2 {
			output = hexOf("0")
		}
		r := svc.receipt(t, "m@1", hexOf("e"), output)
		a.services, a.receipts = append(a.services, svc), append(a.receipts, r)
		a.proofs = append(a.proofs, svc.anchor(t, a.stub, "m@1", 1, r)[0])
	}
	fakeledger.Must(t, a.stub, admins[0], func(ctx fakeledger.Ctx) (*Claim, error) {
		return New().OpenClaim(ctx, "c1", hexOf("e"), "m", 2, "1250.00")
	})
	return a
}

func (a *answered) attest(i int, claim string) func(fakeledger.Ctx) error {
	return a.services[i].as(func(ctx fakeledger.Ctx) error {
		_, err := New().AttestClaim(ctx, claim, jsonOf(a.receipts[i]), 1, a.proofs[i])
		return err
	})
}

func (a *answered) claim(t *testing.T, id string) *Claim {
	t.Helper()
	cl, err := New().GetClaim(fakeledger.Query(a.stub, user), id)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func commit(t *testing.T, stub *fakeledger.Stub, call func(fakeledger.Ctx) error) {
	t.Helper()
	if _, err := fakeledger.Submit(stub, user, func(ctx fakeledger.Ctx) (any, error) { return nil, call(ctx) }); err != nil {
		t.Fatal(err)
	}
}

// The attacks: another org pays out first with an amount of its choice; a claim id is
// squatted across orgs; the opener's own service settles its claim alone; one receipt
// answers two claims.
func TestAClaimNeedsTwoOrgsAFixedAmountAndItsOpenerAndCountsEachReceiptOnce(t *testing.T) {
	a := answer(t)
	c := New()
	// Org2 opens its own c1: no collision with Org1's.
	fakeledger.Must(t, a.stub, admins[1], func(ctx fakeledger.Ctx) (*Claim, error) { return c.OpenClaim(ctx, "c1", hexOf("9"), "m", 3, "1.00") })
	if org1, org2 := a.claim(t, "Org1MSP:c1"), a.claim(t, "Org2MSP:c1"); org1.Amount != "1250.00" || org2.InputDigest != hexOf("9") {
		t.Fatalf("claims of two orgs under one id mixed: %+v %+v", org1, org2)
	}
	commit(t, a.stub, a.attest(0, "Org1MSP:c1"))
	if cl := a.claim(t, "Org1MSP:c1"); cl.Status != "open" || cl.Answers != 1 {
		t.Fatalf("the opener's own service settled the claim, or its answer left the claim as it was: %+v", cl)
	}
	commit(t, a.stub, a.attest(2, "Org1MSP:c1")) // Org3 disagrees
	if cl := a.claim(t, "Org1MSP:c1"); cl.Status != "open" {
		t.Fatalf("two disagreeing orgs accepted the claim: %+v", cl)
	}
	payout := func(amount string) func(fakeledger.Ctx) error {
		return func(ctx fakeledger.Ctx) error { _, err := c.ExecutePayout(ctx, "Org1MSP:c1", amount); return err }
	}
	fakeledger.CheckRefusals(t, a.stub, []fakeledger.Refusal{
		fakeledger.R("the same org attests again", user, a.attest(0, "Org1MSP:c1"), ledgerutil.AlreadyDone),
		fakeledger.R("paying out before k orgs agree", admins[0], payout("1250.00"), ledgerutil.WrongPhase),
	})
	commit(t, a.stub, a.attest(1, "Org1MSP:c1"))
	if cl := a.claim(t, "Org1MSP:c1"); cl.Status != "accepted" || len(cl.AgreeingOrgs) != 2 || cl.AcceptedOutput != hexOf("f") {
		t.Fatalf("Org1 and Org2 agreeing must accept: %+v", cl)
	}

	// Org1 opens c2 on the same input; Org2's service offers the receipt it used for c1.
	fakeledger.Must(t, a.stub, admins[0], func(ctx fakeledger.Ctx) (*Claim, error) { return c.OpenClaim(ctx, "c2", hexOf("e"), "m", 2, "5.00") })
	fakeledger.CheckRefusals(t, a.stub, []fakeledger.Refusal{
		fakeledger.R("a receipt used for a second claim", user, a.attest(1, "Org1MSP:c2"), ledgerutil.Conflict),
		fakeledger.R("another org's admin pays out", admins[1], payout("0.01"), ledgerutil.Forbidden),
		fakeledger.R("the opener pays another amount", admins[0], payout("9999.00"), ledgerutil.Conflict),
		fakeledger.R("attesting an accepted claim", user, a.attest(2, "Org1MSP:c1"), ledgerutil.WrongPhase),
	})
	p, err := fakeledger.Submit(a.stub, admins[0], func(ctx fakeledger.Ctx) (*Payout, error) { return c.ExecutePayout(ctx, "Org1MSP:c1", "1250.00") })
	if err != nil || p.Amount != "1250.00" || p.ExecutedBy != "Org1MSP" {
		t.Fatalf("%+v %v", p, err)
	}
	fakeledger.CheckRefusals(t, a.stub, []fakeledger.Refusal{
		fakeledger.R("paying out twice", admins[0], payout("1250.00"), ledgerutil.AlreadyDone),
	})
}

// An answer counts only from a version its org may serve now.
func TestAnswersOfARevokedOrSuspendedVersionDoNotCount(t *testing.T) {
	a := answer(t)
	reg := registry.New()
	fakeledger.Must(t, a.stub, admins[1], func(ctx fakeledger.Ctx) (*registry.Suspension, error) { return reg.Suspend(ctx, "m@1", "our audit") })
	fakeledger.CheckRefusals(t, a.stub, []fakeledger.Refusal{
		fakeledger.R("the service of an org that suspended the version", user, a.attest(1, "Org1MSP:c1"), ledgerutil.Conflict),
		fakeledger.R("that org's service anchors", user, a.services[1].as(func(ctx fakeledger.Ctx) error {
			_, err := New().AnchorBatch(ctx, batch(2, "m@1", 2, 2))
			return err
		}), ledgerutil.Conflict),
	})
	commit(t, a.stub, a.attest(0, "Org1MSP:c1")) // Org1 did not suspend it
	for _, admin := range admins[1:] {
		fakeledger.Must(t, a.stub, admin, func(ctx fakeledger.Ctx) (*registry.ModelVersion, error) { return reg.Revoke(ctx, "m@1", "bias") })
	}
	state := maps.Clone(a.stub.State)
	_, err := fakeledger.Submit(a.stub, user, func(ctx fakeledger.Ctx) (any, error) { return nil, a.attest(2, "Org1MSP:c1")(ctx) })
	if ledgerutil.CodeOf(err) != ledgerutil.Conflict || !maps.EqualFunc(state, a.stub.State, bytes.Equal) {
		t.Fatalf("an answer of a revoked version counted: %v", err)
	}
}
