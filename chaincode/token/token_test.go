package token

import (
	"strings"
	"testing"

	"github.com/fabricml/fabricml/chaincode/consortium"
	"github.com/fabricml/fabricml/chaincode/internal/fakeledger"
)

var admins = []fakeledger.Identity{
	{MSPID: "Org1MSP", Name: "admin", OU: "admin"},
	{MSPID: "Org2MSP", Name: "admin", OU: "admin"},
	{MSPID: "Org3MSP", Name: "admin", OU: "admin"},
}

func members(t *testing.T) *fakeledger.Stub {
	t.Helper()
	stub := fakeledger.NewStub()
	for _, a := range admins {
		if _, err := fakeledger.Submit(stub, a, func(ctx fakeledger.Ctx) (*consortium.Member, error) { return consortium.New().Join(ctx, a.MSPID) }); err != nil {
			t.Fatal(err)
		}
	}
	return stub
}

func TestTokensAreMintedOnlyByAMajorityVoteForTheSameTerms(t *testing.T) {
	stub := members(t)
	c := New()
	p, err := fakeledger.Submit(stub, admins[0], func(ctx fakeledger.Ctx) (*MintProposal, error) { return c.VoteMint(ctx, "m1", "Org3MSP", 500) })
	if err != nil || p.Minted {
		t.Fatalf("one vote of three must not mint: %+v %v", p, err)
	}
	if _, err := fakeledger.Submit(stub, admins[0], func(ctx fakeledger.Ctx) (*MintProposal, error) { return c.VoteMint(ctx, "m1", "Org3MSP", 500) }); err == nil {
		t.Fatal("a second vote by the same org counted")
	}
	if _, err := fakeledger.Submit(stub, admins[1], func(ctx fakeledger.Ctx) (*MintProposal, error) { return c.VoteMint(ctx, "m1", "Org3MSP", 9999) }); err == nil || !strings.Contains(err.Error(), "same terms") {
		t.Fatalf("a vote with other terms was accepted: %v", err)
	}
	p, err = fakeledger.Submit(stub, admins[1], func(ctx fakeledger.Ctx) (*MintProposal, error) { return c.VoteMint(ctx, "m1", "Org3MSP", 500) })
	if err != nil || !p.Minted {
		t.Fatalf("two votes of three must mint: %+v %v", p, err)
	}
	b, _ := c.GetBalance(fakeledger.Query(stub, admins[0]), "Org3MSP")
	if b.Amount != 500 {
		t.Fatalf("balance %d", b.Amount)
	}
	if _, err := fakeledger.Submit(stub, admins[2], func(ctx fakeledger.Ctx) (*MintProposal, error) { return c.VoteMint(ctx, "m1", "Org3MSP", 500) }); err == nil {
		t.Fatal("a minted proposal minted again")
	}
}

func TestMoveNeverGoesBelowZero(t *testing.T) {
	stub := members(t)
	move := func(delta int64) error {
		_, err := fakeledger.Submit(stub, admins[0], func(ctx fakeledger.Ctx) (any, error) { return nil, Move(ctx, "Org1MSP", delta) })
		return err
	}
	if err := move(-1); err == nil {
		t.Fatal("an empty account went negative")
	}
	// Each move is its own transaction: a transaction does not read its own writes,
	// so a debit in the same transaction as the credit would still see 0.
	if err := move(10); err != nil {
		t.Fatal(err)
	}
	if err := move(-11); err == nil {
		t.Fatal("an account of 10 went negative")
	}
	if err := move(-10); err != nil {
		t.Fatal(err)
	}
	if b, _ := BalanceOf(fakeledger.Query(stub, admins[0]), "Org1MSP"); b != 0 {
		t.Fatalf("balance %d, want 0", b)
	}
}

func TestNonAdminsCannotVote(t *testing.T) {
	stub := members(t)
	user := fakeledger.Identity{MSPID: "Org1MSP", Name: "user1", OU: "client"}
	if _, err := fakeledger.Submit(stub, user, func(ctx fakeledger.Ctx) (*MintProposal, error) { return New().VoteMint(ctx, "m1", "Org1MSP", 5) }); err == nil {
		t.Fatal("a client voted")
	}
}
