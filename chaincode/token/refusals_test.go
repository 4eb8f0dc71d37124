package token

import (
	"testing"

	"github.com/fabricml/fabricml/chaincode/internal/fakeledger"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

func TestTokenRefusalsCarryTheirCode(t *testing.T) {
	stub := members(t)
	c := New()
	vote := func(id, recipient string, amount int64) func(fakeledger.Ctx) error {
		return func(ctx fakeledger.Ctx) error { _, err := c.VoteMint(ctx, id, recipient, amount); return err }
	}
	for _, a := range admins[:2] { // m1 is minted; m2 has org1's vote
		if _, err := fakeledger.Submit(stub, a, func(ctx fakeledger.Ctx) (*MintProposal, error) { return c.VoteMint(ctx, "m1", "Org3MSP", 500) }); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := fakeledger.Submit(stub, admins[0], func(ctx fakeledger.Ctx) (*MintProposal, error) { return c.VoteMint(ctx, "m2", "Org2MSP", 5) }); err != nil {
		t.Fatal(err)
	}
	client := fakeledger.User("Org1MSP")
	outsider := fakeledger.Admin("Org9MSP")
	move := func(msp string, delta int64) func(fakeledger.Ctx) error {
		return func(ctx fakeledger.Ctx) error { return Move(ctx, msp, delta) }
	}
	fakeledger.CheckRefusals(t, stub, []fakeledger.Refusal{
		fakeledger.R("a client votes", client, vote("m3", "Org1MSP", 1), ledgerutil.Forbidden),
		fakeledger.R("a malformed proposal id", admins[0], vote("m 3", "Org1MSP", 1), ledgerutil.Invalid),
		fakeledger.R("a zero amount", admins[0], vote("m3", "Org1MSP", 0), ledgerutil.Invalid),
		fakeledger.R("a negative amount", admins[0], vote("m3", "Org1MSP", -5), ledgerutil.Invalid),
		fakeledger.R("an amount over the cap", admins[0], vote("m3", "Org1MSP", MaxAmount+1), ledgerutil.Invalid),
		fakeledger.R("an outsider votes", outsider, vote("m3", "Org1MSP", 1), ledgerutil.Forbidden),
		fakeledger.R("an outsider receives", admins[0], vote("m3", "Org9MSP", 1), ledgerutil.Invalid),
		fakeledger.R("other terms under a proposal", admins[1], vote("m2", "Org2MSP", 6), ledgerutil.Conflict),
		fakeledger.R("the same org votes again", admins[0], vote("m2", "Org2MSP", 5), ledgerutil.AlreadyDone),
		fakeledger.R("a vote after the mint", admins[2], vote("m1", "Org3MSP", 500), ledgerutil.AlreadyDone),
		fakeledger.R("spending more than the balance", admins[0], move("Org3MSP", -501), ledgerutil.Exhausted),
		fakeledger.R("a balance over the cap", admins[0], move("Org3MSP", MaxAmount), ledgerutil.Exhausted),
		fakeledger.R("a movement beyond the cap", admins[0], move("Org3MSP", -MaxAmount-1), ledgerutil.Invalid),
	})
	if b, _ := BalanceOf(fakeledger.Query(stub, admins[0]), "Org3MSP"); b != 500 {
		t.Fatalf("org3 should hold exactly the 500 minted, holds %d", b)
	}
}
