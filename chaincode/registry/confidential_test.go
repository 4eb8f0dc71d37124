package registry

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"testing"

	"github.com/fabricml/fabricml/chaincode/internal/fakeledger"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

// stored: m@1 with confidential provenance that Org1's trainer stored.
func stored(t *testing.T) (*fakeledger.Stub, string) {
	t.Helper()
	stub := consortiumOfThree(t)
	secret := `{"dataset":"claims from the oncology ward"}`
	sum := sha256.Sum256([]byte(secret))
	register(t, stub, "m@1", func(r *RegistrationRequest) { r.ConfidentialDigest = hex.EncodeToString(sum[:]) })
	stub.Transient["confidential"] = []byte(secret)
	if _, err := fakeledger.Submit(stub, trainer1, func(ctx fakeledger.Ctx) (any, error) { return nil, New().PutConfidential(ctx, "m@1") }); err != nil {
		t.Fatal(err)
	}
	delete(stub.Transient, "confidential")
	return stub, secret
}

func read(stub *fakeledger.Stub, who fakeledger.Identity) (string, error) {
	return New().GetConfidential(fakeledger.Query(stub, who), "m@1")
}

// The attack: Org2's user1, with no role, evaluates GetConfidential on Org1's peer (the
// fake ledger holds every collection, like the owner's peer) and reads the plaintext.
func TestOnlyTheOwnerAndItsGranteesReadConfidentialProvenance(t *testing.T) {
	stub, secret := stored(t)
	user2 := fakeledger.User("Org2MSP")
	for _, who := range []fakeledger.Identity{user2, auditor2, admins[1], admins[2], user1, outsider} {
		if got, err := read(stub, who); ledgerutil.CodeOf(err) != ledgerutil.Forbidden || got != "" {
			t.Fatalf("%s/%s read %q (%v), want FORBIDDEN", who.MSPID, who.Name, got, err)
		}
	}
	for _, who := range []fakeledger.Identity{auditor1, trainer1, admins[0]} {
		if got, err := read(stub, who); err != nil || got != secret {
			t.Fatalf("the owner's %s read %q %v", who.Name, got, err)
		}
	}
	c := New()
	private := func() map[string][]byte { return maps.Clone(stub.Private[ImplicitCollection("Org1MSP")]) }
	before := private()
	fakeledger.CheckRefusals(t, stub, []fakeledger.Refusal{
		fakeledger.R("another org grants access to the owner's data", admins[1], func(ctx fakeledger.Ctx) error { _, err := c.GrantConfidential(ctx, "m@1", "Org2MSP"); return err }, ledgerutil.Forbidden),
		fakeledger.R("a trainer of the owner grants", trainer1, func(ctx fakeledger.Ctx) error { _, err := c.GrantConfidential(ctx, "m@1", "Org2MSP"); return err }, ledgerutil.Forbidden),
		fakeledger.R("a grant to a non-member", admins[0], func(ctx fakeledger.Ctx) error { _, err := c.GrantConfidential(ctx, "m@1", "Org9MSP"); return err }, ledgerutil.Invalid),
		fakeledger.R("a grant to the owner itself", admins[0], func(ctx fakeledger.Ctx) error { _, err := c.GrantConfidential(ctx, "m@1", "Org1MSP"); return err }, ledgerutil.Invalid),
		fakeledger.R("withdrawing a grant never made", admins[0], func(ctx fakeledger.Ctx) error {
			_, err := c.WithdrawConfidentialGrant(ctx, "m@1", "Org2MSP")
			return err
		}, ledgerutil.AlreadyDone),
	})
	if !maps.EqualFunc(before, private(), bytes.Equal) {
		t.Fatal("a refused grant changed the owner's collection")
	}
	grant := func(ctx fakeledger.Ctx) (*ConfidentialGrant, error) {
		return c.GrantConfidential(ctx, "m@1", "Org2MSP")
	}
	if _, err := fakeledger.Submit(stub, admins[0], grant); err != nil {
		t.Fatal(err)
	}
	if got, err := read(stub, auditor2); err != nil || got != secret {
		t.Fatalf("the grantee's auditor read %q %v", got, err)
	}
	if _, err := read(stub, user2); ledgerutil.CodeOf(err) != ledgerutil.Forbidden {
		t.Fatalf("a grantee identity without a role read it: %v", err)
	}
	if got, err := read(stub, fakeledger.WithRole("Org3MSP", "auditor", "auditor")); ledgerutil.CodeOf(err) != ledgerutil.Forbidden {
		t.Fatalf("an org without a grant read %q %v", got, err)
	}
	if _, err := fakeledger.Submit(stub, admins[0], func(ctx fakeledger.Ctx) (*ConfidentialGrant, error) {
		return c.WithdrawConfidentialGrant(ctx, "m@1", "Org2MSP")
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := read(stub, auditor2); ledgerutil.CodeOf(err) != ledgerutil.Forbidden {
		t.Fatalf("a withdrawn grant still reads: %v", err)
	}
	for k, v := range stub.State {
		if bytes.Contains(v, []byte("oncology")) || bytes.Contains([]byte(k), []byte("grant")) {
			t.Fatalf("confidential data or a grant reached public state under %q", k)
		}
	}
}
