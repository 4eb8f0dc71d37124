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
		if _, err := consortium.New().Join(fakeledger.Context(stub, a), a.MSPID); err != nil {
			t.Fatal(err)
		}
	}
	return stub
}

func TestTokensAreMintedOnlyByAMajorityVoteForTheSameTerms(t *testing.T) {
	stub := members(t)
	c := New()
	p, err := c.VoteMint(fakeledger.Context(stub, admins[0]), "m1", "Org3MSP", 500)
	if err != nil || p.Minted {
		t.Fatalf("one vote of three must not mint: %+v %v", p, err)
	}
	if _, err := c.VoteMint(fakeledger.Context(stub, admins[0]), "m1", "Org3MSP", 500); err == nil {
		t.Fatal("a second vote by the same org counted")
	}
	if _, err := c.VoteMint(fakeledger.Context(stub, admins[1]), "m1", "Org3MSP", 9999); err == nil || !strings.Contains(err.Error(), "same terms") {
		t.Fatalf("a vote with other terms was accepted: %v", err)
	}
	p, err = c.VoteMint(fakeledger.Context(stub, admins[1]), "m1", "Org3MSP", 500)
	if err != nil || !p.Minted {
		t.Fatalf("two votes of three must mint: %+v %v", p, err)
	}
	b, _ := c.GetBalance(fakeledger.Context(stub, admins[0]), "Org3MSP")
	if b.Amount != 500 {
		t.Fatalf("balance %d", b.Amount)
	}
	if _, err := c.VoteMint(fakeledger.Context(stub, admins[2]), "m1", "Org3MSP", 500); err == nil {
		t.Fatal("a minted proposal minted again")
	}
}

func TestMoveNeverGoesBelowZero(t *testing.T) {
	stub := members(t)
	ctx := fakeledger.Context(stub, admins[0])
	if err := Move(ctx, "Org1MSP", -1); err == nil {
		t.Fatal("an empty account went negative")
	}
	if err := Move(ctx, "Org1MSP", 10); err != nil {
		t.Fatal(err)
	}
	if err := Move(ctx, "Org1MSP", -10); err != nil {
		t.Fatal(err)
	}
}

func TestNonAdminsCannotVote(t *testing.T) {
	stub := members(t)
	user := fakeledger.Identity{MSPID: "Org1MSP", Name: "user1", OU: "client"}
	if _, err := New().VoteMint(fakeledger.Context(stub, user), "m1", "Org1MSP", 5); err == nil {
		t.Fatal("a client voted")
	}
}
