package governance

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"

	"github.com/fabricml/fabricml/chaincode/internal/fakeledger"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

var members = []string{"Org1MSP", "Org2MSP", "Org3MSP"}

const bundleDigest = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

func request(kind, subject, summary string, update []byte) string {
	req := ProposalRequest{Kind: kind, Subject: subject, Summary: summary, ConfigUpdate: base64.StdEncoding.EncodeToString(update)}
	if kind == KindAddOrg {
		req.Bundle = &Bundle{Digest: bundleDigest, Fingerprint: "AB12-CD34"}
	}
	raw, _ := json.Marshal(req)
	return string(raw)
}

func propose(stub *fakeledger.Stub, who admin, req string) (*Proposal, error) {
	return as(stub, who, func(ctx fakeledger.Ctx) (*Proposal, error) { return New().Propose(ctx, req) })
}

func TestProposeRecordsAnAddOrgUpdateWithWhatItChanges(t *testing.T) {
	stub, admins := consortiumOf(t)
	update := addOrgUpdate(t, "Org4MSP", "Org4MSP", "Org4MSP", members...)
	p, err := propose(stub, admins["Org1MSP"], request(KindAddOrg, "Org4MSP", "Add Org4MSP (Rural Clinic) as a member", update))
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != StatusOpen || p.Proposer != "Org1MSP" || p.Channel != "consortium" || len(p.ID) != 16 || !strings.HasPrefix(p.UpdateDigest, p.ID) {
		t.Fatalf("unexpected proposal %+v", p)
	}
	if p.Org == nil || p.Org.MSPName != "Org4MSP" || len(p.Org.RootCertDigests) != 1 || p.Org.Groups[0] != "/Channel/Application/Org4MSP" {
		t.Fatalf("org definition not recorded: %+v", p.Org)
	}
	want := "add group /Channel/Application/Org4MSP"
	if len(p.Changes) != 2 || p.Changes[1] != want || !strings.Contains(p.Changes[0], "Org4MSP") {
		t.Fatalf("changes: %q", p.Changes)
	}
	if p.Bundle == nil || p.Bundle.Fingerprint != "AB12-CD34" {
		t.Fatalf("the sponsored bundle is not recorded: %+v", p.Bundle)
	}
	if _, ok := stub.Events["ProposalCreated"]; !ok {
		t.Fatal("no ProposalCreated event")
	}
}

// Each attack is an add-org proposal for Org4MSP whose update or summary lies.
func TestProposeRefusesAnAddOrgProposalThatMisdescribesItsUpdate(t *testing.T) {
	keepAll := members
	cases := map[string]struct {
		summary string
		update  func(t *testing.T) []byte
		words   string
	}{
		"summary names another org":                   {"Add Org5MSP", func(t *testing.T) []byte { return addOrgUpdate(t, "Org4MSP", "Org4MSP", "Org4MSP", keepAll...) }, "summary must name"},
		"summary names a second org":                  {"Add Org4MSP, vouched for by Org9MSP", func(t *testing.T) []byte { return addOrgUpdate(t, "Org4MSP", "Org4MSP", "Org4MSP", keepAll...) }, "summary names Org9MSP"},
		"update adds another group":                   {"Add Org4MSP", func(t *testing.T) []byte { return addOrgUpdate(t, "Org5MSP", "Org5MSP", "Org5MSP", keepAll...) }, "may not change group /Channel/Application/Org5MSP"},
		"group defines another MSP":                   {"Add Org4MSP", func(t *testing.T) []byte { return addOrgUpdate(t, "Org4MSP", "Org1MSP", "Org4MSP", keepAll...) }, `defines the MSP "Org1MSP"`},
		"newcomer's policies give Org1 a second vote": {"Add Org4MSP", func(t *testing.T) []byte { return addOrgUpdate(t, "Org4MSP", "Org4MSP", "Org1MSP", keepAll...) }, "names Org1MSP"},
		"update silently drops Org3MSP": {"Add Org4MSP", func(t *testing.T) []byte {
			return addOrgUpdate(t, "Org4MSP", "Org4MSP", "Org4MSP", "Org1MSP", "Org2MSP")
		}, "also removes member Org3MSP"},
		"update also changes a policy":   {"Add Org4MSP", func(t *testing.T) []byte { return addOrgAndPolicyUpdate(t) }, "may not change policy /Channel/Application/Admins"},
		"update drops a required policy": {"Add Org4MSP", func(t *testing.T) []byte { return addOrgWithoutPolicy(t, "LifecycleEndorsement") }, "without its policy LifecycleEndorsement"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			stub, admins := consortiumOf(t)
			before := snapshot(stub)
			_, err := propose(stub, admins["Org1MSP"], request(KindAddOrg, "Org4MSP", c.summary, c.update(t)))
			refused(t, err, ledgerutil.Invalid, stub, before)
			if !strings.Contains(err.Error(), c.words) {
				t.Fatalf("message should say %q: %v", c.words, err)
			}
		})
	}
}

func addOrgAndPolicyUpdate(t *testing.T) []byte {
	read := channel(applicationGroup(1, unchangedOrgs(members...)), nil)
	orgs := unchangedOrgs(members...)
	orgs["Org4MSP"] = orgGroup(t, "Org4MSP", "Org4MSP")
	app := applicationGroup(2, orgs)
	app.Policies["Admins"] = policy(t, "Org1MSP")
	app.Policies["Admins"].Version = 1
	return encode(t, &common.ConfigUpdate{ReadSet: read, WriteSet: channel(app, nil)})
}

func addOrgWithoutPolicy(t *testing.T, dropped string) []byte {
	read := channel(applicationGroup(1, unchangedOrgs(members...)), nil)
	orgs := unchangedOrgs(members...)
	orgs["Org4MSP"] = orgGroup(t, "Org4MSP", "Org4MSP")
	app := applicationGroup(2, orgs)
	delete(app.Policies, dropped)
	return encode(t, &common.ConfigUpdate{ReadSet: read, WriteSet: channel(app, nil)})
}

func TestProposeNeedsAnAdminOfAMemberOrg(t *testing.T) {
	stub, _ := consortiumOf(t)
	update := batchSizeUpdate(t, 400)
	before := snapshot(stub)
	user := newIdentity(t, "Org1MSP", "user1", "client")
	_, err := propose(stub, user, request(KindPolicy, "/Channel/Orderer/BatchSize", "Set /Channel/Orderer/BatchSize to 400 messages", update))
	refused(t, err, ledgerutil.Forbidden, stub, before)
	outsider := newIdentity(t, "Org9MSP", "admin", "admin")
	_, err = propose(stub, outsider, request(KindPolicy, "/Channel/Orderer/BatchSize", "Set /Channel/Orderer/BatchSize to 400 messages", update))
	refused(t, err, ledgerutil.Forbidden, stub, before)
}

func TestProposeRefusesMalformedRequests(t *testing.T) {
	stub, admins := consortiumOf(t)
	good := batchSizeUpdate(t, 400)
	noBundle, _ := json.Marshal(ProposalRequest{Kind: KindAddOrg, Subject: "Org4MSP", Summary: "Add Org4MSP",
		ConfigUpdate: base64.StdEncoding.EncodeToString(addOrgUpdate(t, "Org4MSP", "Org4MSP", "Org4MSP", members...))})
	cases := map[string]string{
		"unknown kind":           request("make-me-admin", "Org1MSP", "Org1MSP", good),
		"unknown field":          `{"kind":"policy","subject":"/Channel/Orderer/BatchSize","summary":"/Channel/Orderer/BatchSize","configUpdate":"","extra":1}`,
		"not base64":             `{"kind":"policy","subject":"/Channel/Orderer/BatchSize","summary":"/Channel/Orderer/BatchSize","configUpdate":"%%%"}`,
		"not a config update":    request(KindPolicy, "/Channel/Orderer/BatchSize", "/Channel/Orderer/BatchSize", []byte("\xff\xff garbage")),
		"update changes nothing": request(KindPolicy, "/Channel/Orderer/BatchSize", "/Channel/Orderer/BatchSize", removeOrgUpdateSameVersion(t)),
		"bad subject":            request(KindAddOrg, "Org4MSP; DROP", "Org4MSP; DROP", good),
		"empty summary":          request(KindPolicy, "/Channel/Orderer/BatchSize", "", good),
		"add-org without bundle": string(noBundle),
		"oversized summary":      request(KindPolicy, "/Channel/Orderer/BatchSize", "/Channel/Orderer/BatchSize "+strings.Repeat("x", MaxSummaryRunes), good),
	}
	for name, req := range cases {
		t.Run(name, func(t *testing.T) {
			before := snapshot(stub)
			_, err := propose(stub, admins["Org1MSP"], req)
			refused(t, err, ledgerutil.Invalid, stub, before)
		})
	}
}

func removeOrgUpdateSameVersion(t *testing.T) []byte {
	g := channel(applicationGroup(1, unchangedOrgs(members...)), nil)
	return encode(t, &common.ConfigUpdate{ReadSet: g, WriteSet: channel(applicationGroup(1, unchangedOrgs(members...)), nil)})
}

func TestProposingTheSameUpdateTwice(t *testing.T) {
	stub, admins := consortiumOf(t)
	update := batchSizeUpdate(t, 400)
	req := request(KindPolicy, "/Channel/Orderer/BatchSize", "Set /Channel/Orderer/BatchSize to 400", update)
	if _, err := propose(stub, admins["Org1MSP"], req); err != nil {
		t.Fatal(err)
	}
	before := snapshot(stub)
	_, err := propose(stub, admins["Org1MSP"], req)
	refused(t, err, ledgerutil.AlreadyDone, stub, before)
	other := request(KindPolicy, "/Channel/Orderer/BatchSize", "Shrink /Channel/Orderer/BatchSize", update)
	_, err = propose(stub, admins["Org2MSP"], other)
	refused(t, err, ledgerutil.Conflict, stub, before)
}

func TestRemoveOrgProposals(t *testing.T) {
	stub, admins := consortiumOf(t)
	before := snapshot(stub)
	_, err := propose(stub, admins["Org1MSP"], request(KindRemoveOrg, "Org3MSP", "Remove Org3MSP", removeOrgUpdate(t, "Org1MSP")))
	refused(t, err, ledgerutil.Invalid, stub, before) // also drops Org2MSP
	_, err = propose(stub, admins["Org1MSP"], request(KindRemoveOrg, "Org9MSP", "Remove Org9MSP", removeOrgUpdate(t, members...)))
	refused(t, err, ledgerutil.NotFound, stub, before)
	_, err = propose(stub, admins["Org1MSP"], request(KindRemoveOrg, "Org3MSP", "Remove Org3MSP", removeOrgUpdate(t, members...)))
	refused(t, err, ledgerutil.Invalid, stub, before) // keeps Org3MSP
	p, err := propose(stub, admins["Org1MSP"], request(KindRemoveOrg, "Org3MSP", "Remove Org3MSP from the consortium", removeOrgUpdate(t, "Org1MSP", "Org2MSP")))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Changes) != 1 || !strings.Contains(p.Changes[0], "[Org1MSP, Org2MSP]") {
		t.Fatalf("changes: %q", p.Changes)
	}
}

func TestPolicyProposals(t *testing.T) {
	stub, admins := consortiumOf(t)
	before := snapshot(stub)
	update := batchSizeUpdate(t, 400)
	_, err := propose(stub, admins["Org1MSP"], request(KindPolicy, "/Channel/Orderer/BatchTimeout", "Change /Channel/Orderer/BatchTimeout", update))
	refused(t, err, ledgerutil.Invalid, stub, before)
	_, err = propose(stub, admins["Org1MSP"], request(KindPolicy, "/Channel/Orderer/ConsensusType", "Change /Channel/Orderer/ConsensusType", consenterUpdate(t, raft(1))))
	refused(t, err, ledgerutil.Invalid, stub, before)
	p, err := propose(stub, admins["Org1MSP"], request(KindPolicy, "/Channel/Orderer/BatchSize", "Set /Channel/Orderer/BatchSize to 400 messages", update))
	if err != nil {
		t.Fatal(err)
	}
	if p.Changes[0] != "update value /Channel/Orderer/BatchSize to version 1 (mod_policy Admins)" {
		t.Fatalf("changes: %q", p.Changes)
	}
}

func TestConsenterProposals(t *testing.T) {
	stub, admins := consortiumOf(t)
	before := snapshot(stub)
	_, err := propose(stub, admins["Org1MSP"], request(KindConsenterAdd, "127.0.0.1:7320", "Add consenter 127.0.0.1:7320", consenterUpdate(t, raft(7020), raft(7120))))
	refused(t, err, ledgerutil.Invalid, stub, before)
	_, err = propose(stub, admins["Org1MSP"], request(KindConsenterAdd, "127.0.0.1:7320", "Add consenter 127.0.0.1:7320", consenterUpdate(t, raft(7020), raft(7320), raft(7320))))
	refused(t, err, ledgerutil.Invalid, stub, before)
	_, err = propose(stub, admins["Org1MSP"], request(KindConsenterRemove, "127.0.0.1:7220", "Remove consenter 127.0.0.1:7220", consenterUpdate(t, raft(7020), raft(7220))))
	refused(t, err, ledgerutil.Invalid, stub, before)
	_, err = propose(stub, admins["Org1MSP"], request(KindConsenterAdd, "127.0.0.1:7320", "Add consenter 127.0.0.1:7320, replacing 127.0.0.1:7220", consenterUpdate(t, raft(7020), raft(7120), raft(7320))))
	refused(t, err, ledgerutil.Invalid, stub, before)
	p, err := propose(stub, admins["Org1MSP"], request(KindConsenterAdd, "127.0.0.1:7320", "Add consenter 127.0.0.1:7320", consenterUpdate(t, raft(7020), raft(7120), raft(7320))))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(p.Consenters, ",") != "127.0.0.1:7020,127.0.0.1:7120,127.0.0.1:7320" {
		t.Fatalf("consenters: %v", p.Consenters)
	}
}
