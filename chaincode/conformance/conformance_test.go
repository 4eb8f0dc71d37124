package conformance

import (
	"testing"

	"github.com/fabricml/fabricml/chaincode/internal/fakeledger"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

func TestConformanceRefusalsCarryTheirCode(t *testing.T) {
	stub := fakeledger.NewStub()
	c := New("Org2MSP")
	who := fakeledger.User("Org1MSP")
	get := func(k string) func(fakeledger.Ctx) error {
		return func(ctx fakeledger.Ctx) error { _, err := c.Get(ctx, k); return err }
	}
	fakeledger.CheckRefusals(t, stub, []fakeledger.Refusal{
		fakeledger.R("an empty key", who, get(""), ledgerutil.Invalid),
		fakeledger.R("a missing key", who, get("k"), ledgerutil.NotFound),
		fakeledger.R("a missing transient field", who, func(ctx fakeledger.Ctx) error { _, err := c.EchoTransient(ctx, "pin"); return err }, ledgerutil.NotFound),
		fakeledger.R("a deliberate failure", who, func(ctx fakeledger.Ctx) error { return c.Fail(ctx, "the reason") }, ledgerutil.Conflict),
		fakeledger.R("this org refuses on purpose", who, func(ctx fakeledger.Ctx) error { _, err := c.FailOnOrg(ctx, "Org2MSP", "k"); return err }, ledgerutil.Forbidden),
		fakeledger.R("a private value not sent as transient", who, func(ctx fakeledger.Ctx) error { return c.PutPrivate(ctx, "col", "k") }, ledgerutil.Invalid),
		fakeledger.R("key endorsers without orgs", who, func(ctx fakeledger.Ctx) error { return c.SetKeyEndorsers(ctx, "k", nil) }, ledgerutil.Invalid),
	})
}
