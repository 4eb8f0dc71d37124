package attestation

import (
	"encoding/json"
	"testing"

	"github.com/fabricml/fabricml/chaincode/internal/fakeledger"
	"github.com/fabricml/fabricml/chaincode/internal/testkit"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
	"github.com/fabricml/fabricml/chaincode/registry"
)

// members: three orgs, m@1 approved by Org1 and Org2, m@2 registered but never approved.
func members(t *testing.T) *fakeledger.Stub {
	t.Helper()
	stub := testkit.Consortium(t, admins...)
	reg := registry.New()
	for _, v := range []string{"1", "2"} {
		req, _ := json.Marshal(registry.RegistrationRequest{Name: "m", Version: v, ManifestDigest: hexOf("a"),
			Weights: registry.Weights{Digest: hexOf("b"), Files: 1}, TrainingOrgs: []string{"Org1MSP"}})
		fakeledger.Must(t, stub, trainer, func(ctx fakeledger.Ctx) (*registry.ModelVersion, error) { return reg.Register(ctx, string(req)) })
	}
	for _, a := range admins[:2] {
		fakeledger.Must(t, stub, a, func(ctx fakeledger.Ctx) (*registry.ModelVersion, error) { return reg.Approve(ctx, "m@1") })
	}
	return stub
}

func verify(stub *fakeledger.Stub, r Receipt, batch uint64, proof string) (*InclusionResult, error) {
	return New().VerifyInclusion(fakeledger.Query(stub, user), jsonOf(r), batch, proof)
}

// The attack from the review: a service anchors batch 1 (model m@1, receipts 1..1)
// whose one leaf is a receipt of the unapproved m@2 numbered 777; before, that receipt
// passed VerifyInclusion. A receipt now verifies only inside the batch of its model
// and sequence, at its own position.
func TestAReceiptVerifiesOnlyInsideTheBatchOfItsModelAndSequence(t *testing.T) {
	stub := members(t)
	svc := newService(t, "Org1MSP")
	svc.next = 777
	forged := svc.receipt(t, "m@2", hexOf("e"), hexOf("f"))
	proofs := svc.anchor(t, stub, "m@1", 1, forged)
	if _, err := verify(stub, forged, 1, proofs[0]); ledgerutil.CodeOf(err) != ledgerutil.Conflict {
		t.Fatalf("a receipt of m@2 verified in a batch of m@1: %v", err)
	}
	renumbered := forged
	renumbered.Model = "m@1"
	renumbered = svc.sign(t, renumbered)
	if _, err := verify(stub, renumbered, 1, proofs[0]); ledgerutil.CodeOf(err) != ledgerutil.Conflict {
		t.Fatalf("receipt 777 verified in a batch of receipts 1..1: %v", err)
	}

	// Honest batch 2: receipts 2..4 at positions 0..2.
	svc.next = 2
	honest := []Receipt{svc.receipt(t, "m@1", hexOf("e"), hexOf("f")), svc.receipt(t, "m@1", hexOf("e"), hexOf("0")), svc.receipt(t, "m@1", hexOf("e"), hexOf("1"))}
	proofs = svc.anchor(t, stub, "m@1", 2, honest...)
	for i, r := range honest {
		if got, err := verify(stub, r, 2, proofs[i]); err != nil || !got.Included {
			t.Fatalf("receipt %d: %+v %v", r.Sequence, got, err)
		}
	}
	// A proof valid for position 0 does not prove the receipt that sits at position 1.
	if got, err := verify(stub, honest[1], 2, proofs[0]); err != nil || got.Included {
		t.Fatalf("receipt 3 verified with receipt 2's proof: %+v %v", got, err)
	}
	if _, err := verify(stub, honest[0], 1, proofs[0]); ledgerutil.CodeOf(err) != ledgerutil.Conflict {
		t.Fatalf("receipt 2 verified against batch 1: %v", err)
	}
}
