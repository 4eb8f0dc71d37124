package token

import (
	"strings"
	"testing"

	"github.com/fabricml/fabricml/chaincode/internal/fakeledger"
	"github.com/fabricml/fabricml/chaincode/internal/testkit"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

var admins = fakeledger.Admins(3)

func members(t *testing.T) *fakeledger.Stub { return testkit.Consortium(t, admins...) }

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
	user := fakeledger.User("Org1MSP")
	if _, err := fakeledger.Submit(stub, user, func(ctx fakeledger.Ctx) (*MintProposal, error) { return New().VoteMint(ctx, "m1", "Org1MSP", 5) }); err == nil {
		t.Fatal("a client voted")
	}
}

// The supply is capped at MaxAmount, so no balance, stake or escrow (each a part of it)
// can ever exceed the cap and no credit can fail for it: a mint beyond it is refused.
func TestTheMintedSupplyNeverExceedsTheCap(t *testing.T) {
	stub := members(t)
	c := New()
	vote := func(who fakeledger.Identity, id, recipient string, amount int64) (*MintProposal, error) {
		return fakeledger.Submit(stub, who, func(ctx fakeledger.Ctx) (*MintProposal, error) { return c.VoteMint(ctx, id, recipient, amount) })
	}
	for _, a := range admins[:2] {
		if _, err := vote(a, "big", "Org1MSP", MaxAmount-500); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := vote(admins[0], "more", "Org2MSP", 501); err != nil {
		t.Fatal(err) // one vote: nothing minted yet
	}
	state := len(stub.State)
	if _, err := vote(admins[1], "more", "Org2MSP", 501); ledgerutil.CodeOf(err) != ledgerutil.Exhausted {
		t.Fatalf("a mint beyond the cap must be EXHAUSTED, got %v", err)
	}
	if len(stub.State) != state {
		t.Fatal("a refused mint changed the ledger")
	}
	for _, a := range admins[:2] {
		if _, err := vote(a, "rest", "Org3MSP", 500); err != nil {
			t.Fatal(err)
		}
	}
	s, err := c.GetSupply(fakeledger.Query(stub, admins[0]))
	if err != nil || s.Amount != MaxAmount {
		t.Fatalf("supply %+v %v, want %d", s, err, MaxAmount)
	}
	var sum int64
	for _, a := range admins {
		b, _ := BalanceOf(fakeledger.Query(stub, a), a.MSPID)
		sum += b
	}
	if sum != MaxAmount {
		t.Fatalf("balances add up to %d, the supply is %d", sum, MaxAmount)
	}
}

func TestAddRefusesNegativeAmountsAndSumsBeyondTheCap(t *testing.T) {
	if got, err := Add(MaxAmount-1, 1); err != nil || got != MaxAmount {
		t.Fatalf("Add(cap-1, 1) = %d, %v", got, err)
	}
	for _, tc := range [][2]int64{{MaxAmount, 1}, {-1, 5}, {5, -1}, {1 << 62, 1 << 62}} {
		if _, err := Add(tc[0], tc[1]); ledgerutil.CodeOf(err) != ledgerutil.Internal {
			t.Errorf("Add(%d, %d) must be refused, got %v", tc[0], tc[1], err)
		}
	}
}
