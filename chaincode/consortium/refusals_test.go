package consortium

import (
	"strings"
	"testing"

	"github.com/fabricml/fabricml/chaincode/internal/fakeledger"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

func TestConsortiumRefusalsCarryTheirCode(t *testing.T) {
	stub := fakeledger.NewStub()
	if _, err := fakeledger.Submit(stub, org1Admin, func(ctx fakeledger.Ctx) (*Member, error) { return New().Join(ctx, "City Hospital") }); err != nil {
		t.Fatal(err)
	}
	c := New()
	join := func(name string) func(fakeledger.Ctx) error {
		return func(ctx fakeledger.Ctx) error { _, err := c.Join(ctx, name); return err }
	}
	get := func(msp string) func(fakeledger.Ctx) error {
		return func(ctx fakeledger.Ctx) error { _, err := c.GetMember(ctx, msp); return err }
	}
	fakeledger.CheckRefusals(t, stub, []fakeledger.Refusal{
		fakeledger.R("a client joins", org1User, join("Clinic"), ledgerutil.Forbidden),
		fakeledger.R("an empty display name", org2Admin, join(""), ledgerutil.Invalid),
		fakeledger.R("a display name too long", org2Admin, join(strings.Repeat("x", MaxDisplayNameLen+1)), ledgerutil.Invalid),
		fakeledger.R("an unknown member", org1User, get("Org9MSP"), ledgerutil.NotFound),
		fakeledger.R("an MSP ID Fabric cannot key", org1User, get("Org\x00MSP"), ledgerutil.Invalid),
	})
}
