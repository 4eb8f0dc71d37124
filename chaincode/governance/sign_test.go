package governance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"

	"github.com/fabricml/fabricml/chaincode/internal/fakeledger"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

// opened returns a ledger with one open BatchSize proposal, its update and the admins.
func opened(t *testing.T) (*fakeledger.Stub, map[string]admin, *Proposal, []byte) {
	t.Helper()
	stub, admins := consortiumOf(t)
	update := batchSizeUpdate(t, 400)
	p, err := propose(stub, admins["Org1MSP"], request(KindPolicy, "/Channel/Orderer/BatchSize", "Set /Channel/Orderer/BatchSize to 400 messages", update))
	if err != nil {
		t.Fatal(err)
	}
	return stub, admins, p, update
}

func sign(stub *fakeledger.Stub, who admin, id, sig string) (*Signature, error) {
	return as(stub, who, func(ctx fakeledger.Ctx) (*Signature, error) { return New().Sign(ctx, id, sig) })
}

func get(t *testing.T, stub *fakeledger.Stub, id string) *Proposal {
	t.Helper()
	p, err := New().GetProposal(fakeledger.Query(stub, fakeledger.Identity{MSPID: "Org1MSP"}), id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSignRecordsEachOrgsConfigSignature(t *testing.T) {
	stub, admins, p, update := opened(t)
	for _, m := range []string{"Org2MSP", "Org1MSP"} {
		if _, err := sign(stub, admins[m], p.ID, admins[m].sign(t, update)); err != nil {
			t.Fatal(err)
		}
	}
	got := get(t, stub, p.ID)
	if len(got.Signatures) != 2 || got.Signatures[0].MSPID != "Org1MSP" || got.Signatures[1].MSPID != "Org2MSP" {
		t.Fatalf("signatures: %+v", got.Signatures)
	}
	var cs common.ConfigSignature
	raw, _ := base64.StdEncoding.DecodeString(got.Signatures[0].ConfigSignature)
	if err := proto.Unmarshal(raw, &cs); err != nil || len(cs.Signature) == 0 {
		t.Fatalf("the stored signature is not a ConfigSignature ready to assemble: %v", err)
	}
	if got.ConfigUpdate == "" || got.Status != StatusOpen {
		t.Fatalf("proposal: %+v", got)
	}
}

func TestASecondSignatureByTheSameOrgIsRefused(t *testing.T) {
	stub, admins, p, update := opened(t)
	first := admins["Org2MSP"].sign(t, update)
	if _, err := sign(stub, admins["Org2MSP"], p.ID, first); err != nil {
		t.Fatal(err)
	}
	before := snapshot(stub)
	_, err := sign(stub, admins["Org2MSP"], p.ID, first)
	refused(t, err, ledgerutil.AlreadyDone, stub, before)
	// Another admin of the same org: still one vote per org.
	second := newIdentity(t, "Org2MSP", "admin2", "admin")
	_, err = sign(stub, second, p.ID, second.sign(t, update))
	refused(t, err, ledgerutil.Conflict, stub, before)
	if !strings.Contains(err.Error(), "one signature per org") {
		t.Fatalf("message: %v", err)
	}
}

func TestSignRefusesSignaturesThatWouldNotCountOrAreNotTheCallersOwn(t *testing.T) {
	stub, admins, p, update := opened(t)
	user := newIdentity(t, "Org2MSP", "user1", "client")
	otherOrg1Admin := newIdentity(t, "Org1MSP", "admin2", "admin")
	tampered := tamper(t, admins["Org1MSP"].sign(t, update))
	cases := []struct {
		name  string
		who   admin
		sig   string
		code  ledgerutil.Code
		words string
	}{
		{"a non-admin signs", user, user.sign(t, update), ledgerutil.Forbidden, "needs an org admin"},
		{"an org records another org's signature", admins["Org1MSP"], admins["Org2MSP"].sign(t, update), ledgerutil.Forbidden, "each org records its own"},
		{"an admin records a colleague's signature", admins["Org1MSP"], otherOrg1Admin.sign(t, update), ledgerutil.Forbidden, "not by the admin recording it"},
		{"a signature over another update", admins["Org1MSP"], admins["Org1MSP"].sign(t, batchSizeUpdate(t, 1)), ledgerutil.Invalid, "does not verify"},
		{"a tampered signature", admins["Org1MSP"], tampered, ledgerutil.Invalid, "does not verify"},
		{"a high-S signature the orderer would refuse", admins["Org1MSP"], highS(t, admins["Org1MSP"], update), ledgerutil.Invalid, "does not verify"},
		{"garbage", admins["Org1MSP"], base64.StdEncoding.EncodeToString([]byte("junk")), ledgerutil.Invalid, "ConfigSignature"},
		{"not base64", admins["Org1MSP"], "%%%", ledgerutil.Invalid, "base64"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := snapshot(stub)
			_, err := sign(stub, c.who, p.ID, c.sig)
			refused(t, err, c.code, stub, before)
			if !strings.Contains(err.Error(), c.words) {
				t.Fatalf("message should say %q: %v", c.words, err)
			}
		})
	}
	before := snapshot(stub)
	_, err := sign(stub, admins["Org1MSP"], "0123456789abcdef", admins["Org1MSP"].sign(t, update))
	refused(t, err, ledgerutil.NotFound, stub, before)
	_, err = sign(stub, admins["Org1MSP"], "../../x", admins["Org1MSP"].sign(t, update))
	refused(t, err, ledgerutil.Invalid, stub, before)
}

func tamper(t *testing.T, sig string) string {
	raw, _ := base64.StdEncoding.DecodeString(sig)
	var cs common.ConfigSignature
	if err := proto.Unmarshal(raw, &cs); err != nil {
		t.Fatal(err)
	}
	cs.Signature[len(cs.Signature)-1] ^= 1
	out, _ := proto.Marshal(&cs)
	return base64.StdEncoding.EncodeToString(out)
}

// highS is a valid ECDSA signature with S in the upper half, which Fabric's MSP refuses.
func highS(t *testing.T, a admin, update []byte) string {
	header, _ := proto.Marshal(&common.SignatureHeader{Creator: a.serialized(), Nonce: []byte("n")})
	digest := sha256.Sum256(append(append([]byte{}, header...), update...))
	r, s, err := ecdsa.Sign(rand.Reader, a.Key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	n := elliptic.P256().Params().N
	if s.Cmp(new(big.Int).Rsh(n, 1)) <= 0 {
		s.Sub(n, s)
	}
	der, _ := asn1Marshal(r, s)
	raw, _ := proto.Marshal(&common.ConfigSignature{SignatureHeader: header, Signature: der})
	return base64.StdEncoding.EncodeToString(raw)
}

func record(stub *fakeledger.Stub, who admin, id string, block uint64, digest string) (*Outcome, error) {
	return as(stub, who, func(ctx fakeledger.Ctx) (*Outcome, error) { return New().RecordOutcome(ctx, id, block, digest) })
}

func TestRecordOutcomeClosesTheProposal(t *testing.T) {
	stub, admins, p, update := opened(t)
	before := snapshot(stub)
	_, err := record(stub, admins["Org1MSP"], p.ID, 7, strings.Repeat("b", 64))
	refused(t, err, ledgerutil.Invalid, stub, before)
	_, err = record(stub, admins["Org1MSP"], p.ID, 0, p.UpdateDigest)
	refused(t, err, ledgerutil.Invalid, stub, before)
	_, err = record(stub, newIdentity(t, "Org1MSP", "user1", "client"), p.ID, 7, p.UpdateDigest)
	refused(t, err, ledgerutil.Forbidden, stub, before)
	if _, err := record(stub, admins["Org1MSP"], p.ID, 7, p.UpdateDigest); err != nil {
		t.Fatal(err)
	}
	if got := get(t, stub, p.ID); got.Status != StatusApplied || len(got.Outcomes) != 1 || got.Outcomes[0].BlockNumber != 7 {
		t.Fatalf("proposal after its outcome: %+v", got)
	}
	before = snapshot(stub)
	_, err = record(stub, admins["Org1MSP"], p.ID, 7, p.UpdateDigest)
	refused(t, err, ledgerutil.AlreadyDone, stub, before)
	_, err = record(stub, admins["Org1MSP"], p.ID, 8, p.UpdateDigest)
	refused(t, err, ledgerutil.Conflict, stub, before)
	_, err = sign(stub, admins["Org2MSP"], p.ID, admins["Org2MSP"].sign(t, update))
	refused(t, err, ledgerutil.WrongPhase, stub, before)
}

func TestDifferingOutcomesMarkTheProposalDisputed(t *testing.T) {
	stub, admins, p, _ := opened(t)
	if _, err := record(stub, admins["Org1MSP"], p.ID, 7, p.UpdateDigest); err != nil {
		t.Fatal(err)
	}
	if _, err := record(stub, admins["Org2MSP"], p.ID, 9, p.UpdateDigest); err != nil {
		t.Fatal(err)
	}
	if got := get(t, stub, p.ID); got.Status != StatusDisputed || len(got.Outcomes) != 2 {
		t.Fatalf("two different blocks reported: %+v", got)
	}
}

func TestListProposalsLeavesOutTheUpdateBytes(t *testing.T) {
	stub, admins, p, update := opened(t)
	if _, err := sign(stub, admins["Org3MSP"], p.ID, admins["Org3MSP"].sign(t, update)); err != nil {
		t.Fatal(err)
	}
	list, err := New().ListProposals(fakeledger.Query(stub, fakeledger.Identity{MSPID: "Org2MSP"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != p.ID || list[0].ConfigUpdate != "" || len(list[0].Signatures) != 1 {
		t.Fatalf("listing: %+v", list)
	}
}

func TestAnAppliedRemovalTakesTheOrgOutOfTheMemberChecks(t *testing.T) {
	stub, admins := consortiumOf(t)
	p, err := propose(stub, admins["Org1MSP"], request(KindRemoveOrg, "Org3MSP", "Remove Org3MSP", removeOrgUpdate(t, "Org1MSP", "Org2MSP")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := record(stub, admins["Org1MSP"], p.ID, 9, p.UpdateDigest); err != nil {
		t.Fatal(err)
	}
	// Adding Org4MSP no longer has to keep Org3MSP, and Org3MSP's admin may not propose.
	update := addOrgUpdate(t, "Org4MSP", "Org4MSP", "Org4MSP", "Org1MSP", "Org2MSP")
	if _, err := propose(stub, admins["Org2MSP"], request(KindAddOrg, "Org4MSP", "Add Org4MSP", update)); err != nil {
		t.Fatal(err)
	}
	before := snapshot(stub)
	_, err = propose(stub, admins["Org3MSP"], request(KindPolicy, "/Channel/Orderer/BatchSize", "/Channel/Orderer/BatchSize", batchSizeUpdate(t, 9)))
	refused(t, err, ledgerutil.Forbidden, stub, before)
}
