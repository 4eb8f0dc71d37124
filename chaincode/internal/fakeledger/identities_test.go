package fakeledger_test

import (
	"testing"

	"github.com/fabricml/fabricml/chaincode/caller"
	"github.com/fabricml/fabricml/chaincode/internal/fakeledger"
)

// The contracts read each test identity as the org's CA would have enrolled it.
func TestTheTestIdentitiesReadAsTheirRoles(t *testing.T) {
	want := map[string]caller.Identity{
		"admin":     {MSPID: "Org2MSP", Subject: "admin", NodeRole: caller.NodeRoleAdmin},
		"trainer":   {MSPID: "Org2MSP", Subject: "trainer", NodeRole: caller.NodeRoleClient, Role: "trainer"},
		"inference": {MSPID: "Org2MSP", Subject: "svc", NodeRole: caller.NodeRoleClient, Role: "inference"},
		"user":      {MSPID: "Org2MSP", Subject: "user1", NodeRole: caller.NodeRoleClient},
	}
	ids := map[string]fakeledger.Identity{
		"admin": fakeledger.Admin("Org2MSP"), "trainer": fakeledger.Trainer("Org2MSP"),
		"inference": fakeledger.WithRole("Org2MSP", "svc", "inference"), "user": fakeledger.User("Org2MSP"),
	}
	for name, id := range ids {
		got, err := caller.Of(fakeledger.Query(fakeledger.NewStub(), id))
		if err != nil || got != want[name] {
			t.Errorf("%s reads as %+v (%v), want %+v", name, got, err, want[name])
		}
	}
	admins := fakeledger.Admins(3)
	if len(admins) != 3 || admins[0].MSPID != "Org1MSP" || admins[2].MSPID != "Org3MSP" || admins[1].OU != "admin" {
		t.Fatalf("Admins(3) = %+v", admins)
	}
}

// A signer reads as its NodeOU and role, and its certificate carries its own key.
func TestASignerIsReadFromItsOwnCertificate(t *testing.T) {
	s := fakeledger.NewSigner(t, "Org1MSP", "inference", "client", map[string]string{"role": "inference"})
	got, err := fakeledger.SubmitAs(fakeledger.NewStub(), s, caller.Of)
	want := caller.Identity{MSPID: "Org1MSP", Subject: "inference", NodeRole: caller.NodeRoleClient, Role: "inference"}
	if err != nil || got != want {
		t.Fatalf("%+v %v", got, err)
	}
	if !s.Key.PublicKey.Equal(s.Cert.PublicKey) {
		t.Fatal("the certificate does not hold the signer's key")
	}
	if other := fakeledger.NewSigner(t, "Org1MSP", "inference", "client", nil); other.Cert.SerialNumber.Cmp(s.Cert.SerialNumber) == 0 {
		t.Fatal("two certificates share a serial number")
	}
}
