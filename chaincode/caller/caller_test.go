package caller

import (
	"testing"

	"github.com/fabricml/fabricml/chaincode/internal/fakeledger"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

var (
	orgAdmin = fakeledger.Admin("Org1MSP")
	trainer  = fakeledger.Trainer("Org1MSP")
	client   = fakeledger.Identity{MSPID: "Org1MSP", Name: "viewer", OU: "client"}
)

func as(who fakeledger.Identity) fakeledger.Ctx { return fakeledger.Query(fakeledger.NewStub(), who) }

func TestAdminRefusesAnyoneButAnOrgAdmin(t *testing.T) {
	if who, err := Admin(as(orgAdmin), "Join"); err != nil || who.MSPID != "Org1MSP" || who.NodeRole != NodeRoleAdmin {
		t.Fatalf("an admin was refused: %+v %v", who, err)
	}
	_, err := Admin(as(trainer), "Join")
	want := `FORBIDDEN: Join needs an org admin identity; caller "trainer" of Org1MSP has node role "client"`
	if err == nil || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
}

func TestWithRoleRefusesAnIdentityWithoutTheRole(t *testing.T) {
	if who, err := WithRole(as(trainer), "trainer", "Join"); err != nil || who.Role != "trainer" {
		t.Fatalf("a trainer was refused: %+v %v", who, err)
	}
	if _, err := WithRole(as(orgAdmin), "trainer", "Join"); ledgerutil.CodeOf(err) != ledgerutil.Forbidden {
		t.Fatalf("an admin without the role: %v", err)
	}
}

func TestWithRoleOrAdminTakesEitherAndNamesWhatIsMissing(t *testing.T) {
	for _, who := range []fakeledger.Identity{orgAdmin, trainer} {
		if _, err := WithRoleOrAdmin(as(who), "trainer", "Register"); err != nil {
			t.Fatalf("%s was refused: %v", who.Name, err)
		}
	}
	_, err := WithRoleOrAdmin(as(client), "trainer", "Register")
	want := `FORBIDDEN: Register needs an identity with role=trainer or an org admin; "viewer" of Org1MSP has role ""`
	if err == nil || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
}
