package attestation

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/fabricml/fabricml/chaincode/internal/fakeledger"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

var (
	admins    = fakeledger.Admins(3)
	trainer   = fakeledger.Trainer("Org1MSP")
	inference = fakeledger.WithRole("Org1MSP", "inference", "inference")
	user      = fakeledger.User("Org1MSP")
	outsider  = fakeledger.Admin("Org9MSP")
	hexOf     = func(c string) string { return strings.Repeat(c, 64) }
)

// served: members (m@1 approved, m@2 only registered), batch 1 of the inference
// service anchored, and Org1's claim c1 open for input "e..." on model m (k=2, 10.00).
func served(t *testing.T) *fakeledger.Stub {
	t.Helper()
	stub := members(t)
	c := New()
	fakeledger.Must(t, stub, inference, func(ctx fakeledger.Ctx) (*Batch, error) { return c.AnchorBatch(ctx, batch(1, "m@1", 1, 2)) })
	fakeledger.Must(t, stub, admins[0], func(ctx fakeledger.Ctx) (*Claim, error) { return c.OpenClaim(ctx, "c1", hexOf("e"), "m", 2, "10.00") })
	return stub
}

func batch(seq uint64, model string, first, last uint64) string {
	raw, _ := json.Marshal(BatchRequest{Sequence: seq, Model: model, Root: hexOf("c"), Count: last - first + 1, FirstReceipt: first, LastReceipt: last})
	return string(raw)
}

func receiptFor(mutate func(*Receipt)) string {
	r := Receipt{Schema: "fabricml.receipt/v1", Model: "m@1", ManifestDigest: hexOf("a"), InputDigest: hexOf("e"),
		OutputDigest: hexOf("f"), Service: ServiceID{MSPID: "Org1MSP", Subject: "inference"}, CertificateDig: hexOf("d"),
		Sequence: 1, Time: "2026-01-02T03:04:05Z", Signature: "c2ln"}
	mutate(&r)
	raw, _ := json.Marshal(r)
	return string(raw)
}

func TestAttestationRefusalsCarryTheirCode(t *testing.T) {
	stub := served(t)
	c := New()
	anchor := func(req string) func(fakeledger.Ctx) error {
		return func(ctx fakeledger.Ctx) error { _, err := c.AnchorBatch(ctx, req); return err }
	}
	openFor := func(id, input string, k int, amount string) func(fakeledger.Ctx) error {
		return func(ctx fakeledger.Ctx) error { _, err := c.OpenClaim(ctx, id, input, "m", k, amount); return err }
	}
	open := func(id, input string, k int) func(fakeledger.Ctx) error { return openFor(id, input, k, "10.00") }
	attest := func(id, receipt string) func(fakeledger.Ctx) error {
		return func(ctx fakeledger.Ctx) error {
			_, err := c.AttestClaim(ctx, id, receipt, 1, `{"index":0,"size":2,"path":[]}`)
			return err
		}
	}
	payout := func(id, amount string) func(fakeledger.Ctx) error {
		return func(ctx fakeledger.Ctx) error { _, err := c.ExecutePayout(ctx, id, amount); return err }
	}
	same := func(*Receipt) {}
	fakeledger.CheckRefusals(t, stub, []fakeledger.Refusal{
		fakeledger.R("a trainer anchors", trainer, anchor(batch(2, "m@1", 3, 3)), ledgerutil.Forbidden),
		fakeledger.R("a batch that is not JSON", inference, anchor("{"), ledgerutil.Invalid),
		fakeledger.R("a batch over the size limit", inference, anchor(strings.Repeat(" ", maxRequestBytes+1)), ledgerutil.Invalid),
		fakeledger.R("a malformed root", inference, anchor(strings.Replace(batch(2, "m@1", 3, 3), hexOf("c"), "cc", 1)), ledgerutil.Invalid),
		fakeledger.R("a count that does not fit the receipts", inference, anchor(strings.Replace(batch(2, "m@1", 3, 4), `"count":2`, `"count":3`, 1)), ledgerutil.Invalid),
		fakeledger.R("a replay with other content", inference, anchor(batch(1, "m@1", 1, 3)), ledgerutil.Conflict),
		fakeledger.R("a gap in the sequence", inference, anchor(batch(3, "m@1", 3, 3)), ledgerutil.Conflict),
		fakeledger.R("a gap in the receipts", inference, anchor(batch(2, "m@1", 5, 5)), ledgerutil.Conflict),
		fakeledger.R("an unregistered model", inference, anchor(batch(2, "x@1", 3, 3)), ledgerutil.NotFound),
		fakeledger.R("a model not approved", inference, anchor(batch(2, "m@2", 3, 3)), ledgerutil.Conflict),
		fakeledger.R("an unknown batch", user, func(ctx fakeledger.Ctx) error { _, err := c.GetBatch(ctx, "Org1MSP", "inference", 9); return err }, ledgerutil.NotFound),
		fakeledger.R("a client opens a claim", user, open("c2", hexOf("e"), 1), ledgerutil.Forbidden),
		fakeledger.R("a malformed claim id", admins[0], open("c 2", hexOf("e"), 1), ledgerutil.Invalid),
		fakeledger.R("a malformed input digest", admins[0], open("c2", "e", 1), ledgerutil.Invalid),
		fakeledger.R("k above the members", admins[0], open("c2", hexOf("e"), 4), ledgerutil.Invalid),
		fakeledger.R("k of one: the opener's own service would settle it", admins[0], open("c2", hexOf("e"), 1), ledgerutil.Invalid),
		fakeledger.R("k of zero", admins[0], open("c2", hexOf("e"), 0), ledgerutil.Invalid),
		fakeledger.R("a malformed model name", admins[0], func(ctx fakeledger.Ctx) error {
			_, err := c.OpenClaim(ctx, "c2", hexOf("e"), "M M", 2, "1")
			return err
		}, ledgerutil.Invalid),
		fakeledger.R("a claim without a valid amount", admins[0], openFor("c2", hexOf("e"), 2, "-5"), ledgerutil.Invalid),
		fakeledger.R("an outsider opens a claim", outsider, open("c2", hexOf("e"), 2), ledgerutil.Forbidden),
		fakeledger.R("the same claim again", admins[0], open("c1", hexOf("e"), 2), ledgerutil.AlreadyDone),
		fakeledger.R("other terms under an open claim's id", admins[0], openFor("c1", hexOf("e"), 2, "99.00"), ledgerutil.Conflict),
		fakeledger.R("an unknown claim", user, func(ctx fakeledger.Ctx) error { _, err := c.GetClaim(ctx, "Org1MSP:c9"); return err }, ledgerutil.NotFound),
		fakeledger.R("a claim named without its opener", user, func(ctx fakeledger.Ctx) error { _, err := c.GetClaim(ctx, "c1"); return err }, ledgerutil.Invalid),
		fakeledger.R("a client attests", user, attest("Org1MSP:c1", receiptFor(same)), ledgerutil.Forbidden),
		fakeledger.R("attesting an unknown claim", inference, attest("Org1MSP:c9", receiptFor(same)), ledgerutil.NotFound),
		fakeledger.R("attesting another org's claim of the same id", inference, attest("Org2MSP:c1", receiptFor(same)), ledgerutil.NotFound),
		fakeledger.R("a receipt that is not JSON", inference, attest("Org1MSP:c1", "{"), ledgerutil.Invalid),
		fakeledger.R("a receipt of another schema", inference, attest("Org1MSP:c1", receiptFor(func(r *Receipt) { r.Schema = "v0" })), ledgerutil.Invalid),
		fakeledger.R("a receipt with unsafe text", inference, attest("Org1MSP:c1", receiptFor(func(r *Receipt) { r.Model = "m@1\n" })), ledgerutil.Invalid),
		fakeledger.R("another service's receipt", inference, attest("Org1MSP:c1", receiptFor(func(r *Receipt) { r.Service.Subject = "other" })), ledgerutil.Forbidden),
		fakeledger.R("a receipt naming another certificate", inference, attest("Org1MSP:c1", receiptFor(same)), ledgerutil.Forbidden),
		fakeledger.R("a client pays out", user, payout("Org1MSP:c1", "10.00"), ledgerutil.Forbidden),
		fakeledger.R("a malformed amount", admins[0], payout("Org1MSP:c1", "10.001"), ledgerutil.Invalid),
		fakeledger.R("paying out an open claim", admins[0], payout("Org1MSP:c1", "10.00"), ledgerutil.WrongPhase),
		fakeledger.R("paying out an unknown claim", admins[0], payout("Org1MSP:c9", "10.00"), ledgerutil.NotFound),
		fakeledger.R("verifying a receipt that is not JSON", user, func(ctx fakeledger.Ctx) error { _, err := c.VerifyInclusion(ctx, "{", 1, "{}"); return err }, ledgerutil.Invalid),
	})
}

// A service that retries an anchoring whose commit status it lost gets the batch back
// instead of an out-of-order refusal for ever.
func TestAnchoringTheSameBatchAgainReturnsIt(t *testing.T) {
	stub := served(t)
	c := New()
	first, err := c.GetBatch(fakeledger.Query(stub, user), "Org1MSP", "inference", 1)
	if err != nil {
		t.Fatal(err)
	}
	again := fakeledger.Unchanged(t, stub, inference, func(ctx fakeledger.Ctx) (*Batch, error) { return c.AnchorBatch(ctx, batch(1, "m@1", 1, 2)) })
	if *again != *first {
		t.Fatalf("got %+v, want the anchored %+v", again, first)
	}
}
