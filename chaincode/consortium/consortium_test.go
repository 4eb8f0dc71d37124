package consortium

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/fabricml/fabricml/chaincode/internal/fakeledger"
)

var (
	org1Admin = fakeledger.Admin("Org1MSP")
	org2Admin = fakeledger.Admin("Org2MSP")
	org1User  = fakeledger.User("Org1MSP")
)

func TestJoinRecordsTheCallersOrgFromItsCertificate(t *testing.T) {
	stub := fakeledger.NewStub()
	m, err := fakeledger.Submit(stub, org1Admin, func(ctx fakeledger.Ctx) (*Member, error) { return New().Join(ctx, "City Hospital") })
	if err != nil {
		t.Fatal(err)
	}
	if m.MSPID != "Org1MSP" || m.DisplayName != "City Hospital" || m.JoinedTxID != "tx1" {
		t.Fatalf("unexpected member %+v", m)
	}
	if m.JoinedAt != "2026-01-02T03:04:05Z" {
		t.Fatalf("joinedAt must be the transaction timestamp, got %s", m.JoinedAt)
	}
	var event Member
	if err := json.Unmarshal(stub.Events["MemberJoined"], &event); err != nil || event.MSPID != "Org1MSP" {
		t.Fatalf("MemberJoined event missing or wrong: %s (%v)", stub.Events["MemberJoined"], err)
	}
}

func TestJoinRefusesANonAdminAndStoresNothing(t *testing.T) {
	stub := fakeledger.NewStub()
	_, err := fakeledger.Submit(stub, org1User, func(ctx fakeledger.Ctx) (*Member, error) { return New().Join(ctx, "City Hospital") })
	if err == nil || !strings.Contains(err.Error(), "org admin") {
		t.Fatalf("expected an org admin error, got %v", err)
	}
	if len(stub.State) != 0 {
		t.Fatalf("state changed: %v", stub.State)
	}
}

func TestJoinRefusesEmptyAndOverlongDisplayNames(t *testing.T) {
	for _, name := range []string{"", strings.Repeat("x", MaxDisplayNameLen+1)} {
		stub := fakeledger.NewStub()
		if _, err := fakeledger.Submit(stub, org1Admin, func(ctx fakeledger.Ctx) (*Member, error) { return New().Join(ctx, name) }); err == nil {
			t.Fatalf("display name of %d characters was accepted", len(name))
		}
		if len(stub.State) != 0 {
			t.Fatal("state changed on a refused join")
		}
	}
}

func TestRejoinKeepsTheOriginalJoinTime(t *testing.T) {
	stub := fakeledger.NewStub()
	c := New()
	if _, err := fakeledger.Submit(stub, org1Admin, func(ctx fakeledger.Ctx) (*Member, error) { return c.Join(ctx, "First") }); err != nil {
		t.Fatal(err)
	}
	stub.Time = stub.Time.Add(3600e9)
	m, err := fakeledger.Submit(stub, org1Admin, func(ctx fakeledger.Ctx) (*Member, error) { return c.Join(ctx, "Renamed") })
	if err != nil {
		t.Fatal(err)
	}
	if m.JoinedTxID != "tx1" || m.DisplayName != "Renamed" || m.UpdatedAt == m.JoinedAt {
		t.Fatalf("rejoin should rename and keep the join record: %+v", m)
	}
}

func TestListMembersIsOrderedByMSPID(t *testing.T) {
	stub := fakeledger.NewStub()
	c := New()
	for _, who := range []fakeledger.Identity{org2Admin, org1Admin} {
		if _, err := fakeledger.Submit(stub, who, func(ctx fakeledger.Ctx) (*Member, error) { return c.Join(ctx, who.MSPID) }); err != nil {
			t.Fatal(err)
		}
	}
	members, err := c.ListMembers(fakeledger.Query(stub, org1User))
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 2 || members[0].MSPID != "Org1MSP" || members[1].MSPID != "Org2MSP" {
		t.Fatalf("unexpected order: %+v", members)
	}
	info, err := c.Info(fakeledger.Query(stub, org1User))
	if err != nil || info.Members != 2 {
		t.Fatalf("info = %+v, %v", info, err)
	}
}

func TestGetMemberNamesTheMissingMSPID(t *testing.T) {
	_, err := New().GetMember(fakeledger.Query(fakeledger.NewStub(), org1User), "Org9MSP")
	if err == nil || !strings.Contains(err.Error(), "Org9MSP") {
		t.Fatalf("expected an error naming Org9MSP, got %v", err)
	}
}

func TestWhoAmIReportsTheRoleAttribute(t *testing.T) {
	trainer := fakeledger.Trainer("Org2MSP")
	who, err := New().WhoAmI(fakeledger.Query(fakeledger.NewStub(), trainer))
	if err != nil {
		t.Fatal(err)
	}
	if who.Role != "trainer" || who.NodeRole != "client" || who.MSPID != "Org2MSP" {
		t.Fatalf("unexpected identity %+v", who)
	}
}

func TestHeartbeatIsRecordedPerOrgAtTheTransactionTime(t *testing.T) {
	stub := fakeledger.NewStub()
	hb, err := fakeledger.Submit(stub, org1User, func(ctx fakeledger.Ctx) (*Heartbeat, error) { return New().Heartbeat(ctx) })
	if err != nil {
		t.Fatal(err)
	}
	if hb.MSPID != "Org1MSP" || hb.At != "2026-01-02T03:04:05Z" || hb.TxID != "tx1" {
		t.Fatalf("unexpected heartbeat %+v", hb)
	}
	if len(stub.State) != 1 {
		t.Fatalf("expected one key, got %d", len(stub.State))
	}
}
