package registry

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/fabricml/fabricml/chaincode/internal/fakeledger"
	"github.com/fabricml/fabricml/chaincode/internal/testkit"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

var (
	admins   = fakeledger.Admins(3)
	trainer1 = fakeledger.Trainer("Org1MSP")
	trainer2 = fakeledger.Trainer("Org2MSP")
	auditor1 = fakeledger.WithRole("Org1MSP", "auditor", "auditor")
	auditor2 = fakeledger.WithRole("Org2MSP", "auditor", "auditor")
	user1    = fakeledger.User("Org1MSP")
	outsider = fakeledger.Admin("Org9MSP")
	digestA  = strings.Repeat("a", 64)
	digestB  = strings.Repeat("b", 64)
)

// consortiumOfThree is a ledger where three orgs have joined.
func consortiumOfThree(t *testing.T) *fakeledger.Stub { return testkit.Consortium(t, admins...) }

func request(name, version string, mutate ...func(*RegistrationRequest)) string {
	r := RegistrationRequest{
		Name: name, Version: version, ManifestDigest: digestA,
		Weights:      Weights{Digest: digestB, Files: 2},
		Datasets:     []DatasetFingerprint{{Name: "claims-2025", Digest: digestA, Rows: 1000, SchemaDigest: digestB}},
		Code:         CodeCommit{Repository: "https://example.org/ml.git", Commit: strings.Repeat("c", 40)},
		TrainingOrgs: []string{"Org1MSP"},
		StorageURIs:  []string{"https://store.org1.example:7051/v1/blobs/"},
		Metrics:      map[string]float64{"accuracy": 0.93},
	}
	for _, m := range mutate {
		m(&r)
	}
	raw, _ := json.Marshal(r)
	return string(raw)
}

func register(t *testing.T, stub *fakeledger.Stub, ref string, mutate ...func(*RegistrationRequest)) *ModelVersion {
	t.Helper()
	name, version, _ := strings.Cut(ref, "@")
	m, err := fakeledger.Submit(stub, trainer1, func(ctx fakeledger.Ctx) (*ModelVersion, error) {
		return New().Register(ctx, request(name, version, mutate...))
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRegisterRecordsTheCallersOrgAndStartsUnapproved(t *testing.T) {
	stub := consortiumOfThree(t)
	m := register(t, stub, "credit-risk@1.0")
	if m.RegisteredBy.MSPID != "Org1MSP" || m.RegisteredBy.Subject != "trainer" || m.Status != StatusRegistered {
		t.Fatalf("unexpected record %+v", m)
	}
	if _, ok := stub.Events["ModelRegistered"]; !ok {
		t.Fatal("no ModelRegistered event")
	}
}

func TestRegisterRefusesBadInputAndStoresNothing(t *testing.T) {
	cases := map[string]struct {
		who     fakeledger.Identity
		request string
		code    ledgerutil.Code
		want    string
	}{
		"no trainer role":     {user1, request("m", "1"), ledgerutil.Forbidden, "role=trainer"},
		"malformed digest":    {trainer1, request("m", "1", func(r *RegistrationRequest) { r.ManifestDigest = "xyz" }), ledgerutil.Invalid, "manifestDigest must be 64"},
		"bad name":            {trainer1, request("Bad Name", "1"), ledgerutil.Invalid, `name must be 1-64 lowercase letters, digits, '.', '_', '-', starting with a letter or digit, got "Bad Name"`},
		"bad metric name":     {trainer1, request("m", "1", func(r *RegistrationRequest) { r.Metrics = map[string]float64{"ok": 1, "a b": 2} }), ledgerutil.Invalid, `metric name must be`},
		"bad commit":          {trainer1, request("m", "1", func(r *RegistrationRequest) { r.Code.Commit = "abc" }), ledgerutil.Invalid, "code.commit must be a 40 or 64"},
		"unknown field":       {trainer1, `{"name":"m","version":"1","registeredBy":{"mspId":"Org2MSP"}}`, ledgerutil.Invalid, "unknown field"},
		"not json":            {trainer1, `{"name":`, ledgerutil.Invalid, "registration is not valid"},
		"claims another org":  {trainer1, request("m", "1", func(r *RegistrationRequest) { r.TrainingOrgs = []string{"Org2MSP"} }), ledgerutil.Forbidden, "must include the caller's organization Org1MSP"},
		"non-member org":      {trainer1, request("m", "1", func(r *RegistrationRequest) { r.TrainingOrgs = []string{"Org1MSP", "Org9MSP"} }), ledgerutil.Invalid, "Org9MSP is not a consortium member"},
		"unknown parent":      {trainer1, request("m", "2", func(r *RegistrationRequest) { r.Parents = []string{"m@1"} }), ledgerutil.NotFound, "parent m@1: model m@1 is not registered"},
		"malformed parent":    {trainer1, request("m", "2", func(r *RegistrationRequest) { r.Parents = []string{"no version"} }), ledgerutil.Invalid, "parent: model reference"},
		"own parent":          {trainer1, request("m", "2", func(r *RegistrationRequest) { r.Parents = []string{"m@2"} }), ledgerutil.Invalid, "its own parent"},
		"storage scheme":      {trainer1, request("m", "1", func(r *RegistrationRequest) { r.StorageURIs = []string{"http://x/y"} }), ledgerutil.Invalid, "allowed schemes"},
		"over the size limit": {trainer1, request("m", "1", func(r *RegistrationRequest) { r.Code.Repository = strings.Repeat("r", 5000) }), ledgerutil.Invalid, "the limit is 4096"},
		"negative rows":       {trainer1, request("m", "1", func(r *RegistrationRequest) { r.Datasets[0].Rows = -1 }), ledgerutil.Invalid, "rows must not be negative"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			stub := consortiumOfThree(t)
			before := len(stub.State)
			_, err := fakeledger.Submit(stub, tc.who, func(ctx fakeledger.Ctx) (*ModelVersion, error) { return New().Register(ctx, tc.request) })
			if err == nil || ledgerutil.CodeOf(err) != tc.code || !strings.HasPrefix(err.Error(), string(tc.code)+": ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want %s containing %q, got %v", tc.code, tc.want, err)
			}
			if len(stub.State) != before {
				t.Fatal("state changed on a refused registration")
			}
		})
	}
}

func TestADuplicateNameAndVersionIsRefused(t *testing.T) {
	stub := consortiumOfThree(t)
	register(t, stub, "m@1")
	before := len(stub.State)
	_, err := fakeledger.Submit(stub, trainer1, func(ctx fakeledger.Ctx) (*ModelVersion, error) { return New().Register(ctx, request("m", "1")) })
	if ledgerutil.CodeOf(err) != ledgerutil.AlreadyDone || !strings.Contains(err.Error(), "already registered") {
		t.Fatalf("the same registration again must be ALREADY_DONE: %v", err)
	}
	other := request("m", "1", func(r *RegistrationRequest) { r.Weights.Digest = digestA })
	_, err = fakeledger.Submit(stub, trainer1, func(ctx fakeledger.Ctx) (*ModelVersion, error) { return New().Register(ctx, other) })
	if ledgerutil.CodeOf(err) != ledgerutil.Conflict || !strings.Contains(err.Error(), "already registered with other content") {
		t.Fatalf("other weights under a registered version must be a CONFLICT: %v", err)
	}
	if len(stub.State) != before {
		t.Fatal("a refused registration changed the state")
	}
}

func TestConfidentialProvenanceMustMatchItsRegisteredDigestAndStaysPrivate(t *testing.T) {
	stub := consortiumOfThree(t)
	secret := []byte(`{"dataset":"claims from ward 7"}`)
	sum := sha256.Sum256(secret)
	register(t, stub, "m@1", func(r *RegistrationRequest) { r.ConfidentialDigest = hex.EncodeToString(sum[:]) })
	c := New()
	stub.Transient["confidential"] = []byte("something else")
	if _, err := fakeledger.Submit(stub, trainer1, func(ctx fakeledger.Ctx) (any, error) { return nil, c.PutConfidential(ctx, "m@1") }); err == nil {
		t.Fatal("data not matching the registered digest was stored")
	}
	stub.Transient["confidential"] = secret
	if _, err := fakeledger.Submit(stub, admins[1], func(ctx fakeledger.Ctx) (any, error) { return nil, c.PutConfidential(ctx, "m@1") }); err == nil {
		t.Fatal("another org stored confidential provenance")
	}
	if _, err := fakeledger.Submit(stub, trainer1, func(ctx fakeledger.Ctx) (any, error) { return nil, c.PutConfidential(ctx, "m@1") }); err != nil {
		t.Fatal(err)
	}
	if len(stub.Private[ImplicitCollection("Org1MSP")]) != 1 {
		t.Fatal("confidential data not in the org's collection")
	}
	for _, v := range stub.State {
		if strings.Contains(string(v), "ward 7") {
			t.Fatal("confidential data leaked into public state")
		}
	}
}

func TestMajorityApprovalMakesAVersionDeployable(t *testing.T) {
	stub := consortiumOfThree(t)
	register(t, stub, "m@1")
	c := New()
	m, err := fakeledger.Submit(stub, admins[0], func(ctx fakeledger.Ctx) (*ModelVersion, error) { return c.Approve(ctx, "m@1") })
	if err != nil || m.Status != StatusRegistered {
		t.Fatalf("one of three approvals must not deploy: %+v %v", m, err)
	}
	m, err = fakeledger.Submit(stub, admins[1], func(ctx fakeledger.Ctx) (*ModelVersion, error) { return c.Approve(ctx, "m@1") })
	if err != nil || m.Status != StatusApproved || len(m.Approvals) != 2 {
		t.Fatalf("two of three approvals must deploy: %+v %v", m, err)
	}
	d, err := c.Deployable(fakeledger.Query(stub, user1), "m@1")
	if err != nil || !d.Deployable || d.Required != 2 || d.Rule != "MAJORITY" {
		t.Fatalf("deployability %+v %v", d, err)
	}
}

func TestApprovalRulesAreEnforced(t *testing.T) {
	stub := consortiumOfThree(t)
	register(t, stub, "m@1")
	c := New()
	if _, err := fakeledger.Submit(stub, trainer1, func(ctx fakeledger.Ctx) (*ModelVersion, error) { return c.Approve(ctx, "m@1") }); err == nil || !strings.Contains(err.Error(), "org admin") {
		t.Fatalf("non-admin approval accepted: %v", err)
	}
	approved, err := fakeledger.Submit(stub, admins[0], func(ctx fakeledger.Ctx) (*ModelVersion, error) { return c.Approve(ctx, "m@1") })
	if err != nil {
		t.Fatal(err)
	}
	first := stub.State[mustKey(t, stub, "m", "1")]
	delete(stub.Events, "ModelApproved")
	again, err := fakeledger.Submit(stub, admins[0], func(ctx fakeledger.Ctx) (*ModelVersion, error) { return c.Approve(ctx, "m@1") })
	if err != nil || len(again.Approvals) != 1 || again.Approvals[0].TxID != approved.Approvals[0].TxID {
		t.Fatalf("approving again must return the version with its one approval: %+v %v", again, err)
	}
	if string(stub.State[mustKey(t, stub, "m", "1")]) != string(first) || stub.Events["ModelApproved"] != nil {
		t.Fatal("approving again wrote the record or emitted a second event")
	}
	for _, a := range admins[1:] {
		if _, err := fakeledger.Submit(stub, a, func(ctx fakeledger.Ctx) (*ModelVersion, error) { return c.Revoke(ctx, "m@1", "bias found in audit") }); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := fakeledger.Submit(stub, admins[1], func(ctx fakeledger.Ctx) (*ModelVersion, error) { return c.Approve(ctx, "m@1") }); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("approval of a revoked version accepted: %v", err)
	}
	d, _ := c.Deployable(fakeledger.Query(stub, user1), "m@1")
	if d.Deployable {
		t.Fatal("revoked version is deployable")
	}
}

func TestOnlyATrainingOrgMayDeprecateAndAReasonIsRequired(t *testing.T) {
	stub := consortiumOfThree(t)
	register(t, stub, "m@1")
	c := New()
	if _, err := fakeledger.Submit(stub, admins[1], func(ctx fakeledger.Ctx) (*ModelVersion, error) { return c.Deprecate(ctx, "m@1", "old") }); err == nil {
		t.Fatal("a non-training org deprecated the version")
	}
	if _, err := fakeledger.Submit(stub, admins[0], func(ctx fakeledger.Ctx) (*ModelVersion, error) { return c.Deprecate(ctx, "m@1", "") }); err == nil {
		t.Fatal("deprecation without reason accepted")
	}
	m, err := fakeledger.Submit(stub, admins[0], func(ctx fakeledger.Ctx) (*ModelVersion, error) { return c.Deprecate(ctx, "m@1", "superseded by 2.0") })
	if err != nil || m.Status != StatusDeprecated || m.Deprecation.Reason != "superseded by 2.0" {
		t.Fatalf("%+v %v", m, err)
	}
}

func TestAVotedPolicyTakesEffectAtAMajorityOfMembers(t *testing.T) {
	stub := consortiumOfThree(t)
	c := New()
	p, err := fakeledger.Submit(stub, admins[0], func(ctx fakeledger.Ctx) (*DeploymentPolicy, error) { return c.VoteDeploymentPolicy(ctx, "m", "ALL") })
	if err != nil || p.Rule != "MAJORITY" {
		t.Fatalf("one vote must not change the policy: %+v %v", p, err)
	}
	p, err = fakeledger.Submit(stub, admins[1], func(ctx fakeledger.Ctx) (*DeploymentPolicy, error) { return c.VoteDeploymentPolicy(ctx, "m", "ALL") })
	if err != nil || p.Rule != "ALL" || len(p.Voters) != 2 {
		t.Fatalf("two votes must set ALL: %+v %v", p, err)
	}
	register(t, stub, "m@1")
	for i := 0; i < 2; i++ {
		m, _ := fakeledger.Submit(stub, admins[i], func(ctx fakeledger.Ctx) (*ModelVersion, error) { return c.Approve(ctx, "m@1") })
		if m.Status != StatusRegistered {
			t.Fatalf("ALL must need three approvals, approved after %d", i+1)
		}
	}
	m, _ := fakeledger.Submit(stub, admins[2], func(ctx fakeledger.Ctx) (*ModelVersion, error) { return c.Approve(ctx, "m@1") })
	if m.Status != StatusApproved {
		t.Fatal("three approvals must satisfy ALL")
	}
	if _, err := fakeledger.Submit(stub, admins[0], func(ctx fakeledger.Ctx) (*DeploymentPolicy, error) {
		return c.VoteDeploymentPolicy(ctx, "m", "AT_LEAST_7")
	}); err == nil {
		t.Fatal("a rule needing more approvals than members was accepted")
	}
	if _, err := fakeledger.Submit(stub, admins[0], func(ctx fakeledger.Ctx) (*DeploymentPolicy, error) { return c.VoteDeploymentPolicy(ctx, "m", "SOME") }); err == nil {
		t.Fatal("an unknown rule was accepted")
	}
}

func TestLineageWalksEveryAncestorOnce(t *testing.T) {
	stub := consortiumOfThree(t)
	register(t, stub, "base@1")
	register(t, stub, "a@1", func(r *RegistrationRequest) { r.Parents = []string{"base@1"} })
	register(t, stub, "b@1", func(r *RegistrationRequest) { r.Parents = []string{"base@1"} })
	register(t, stub, "merged@1", func(r *RegistrationRequest) { r.Parents = []string{"a@1", "b@1"} })
	l, err := New().Lineage(fakeledger.Query(stub, user1), "merged@1")
	if err != nil {
		t.Fatal(err)
	}
	refs := []string{}
	for _, v := range l.Versions {
		refs = append(refs, v.Ref())
	}
	if fmt.Sprint(refs) != "[merged@1 a@1 b@1 base@1]" || len(l.Edges) != 4 || len(l.Rounds) != 0 {
		t.Fatalf("unexpected lineage %v %+v %v", refs, l.Edges, l.Rounds)
	}
}

func TestListPagesThroughVersionsInOrder(t *testing.T) {
	stub := consortiumOfThree(t)
	for _, v := range []string{"1", "2", "3"} {
		register(t, stub, "m@"+v)
	}
	register(t, stub, "other@1")
	c := New()
	page, err := c.List(fakeledger.Query(stub, user1), "m", 2, "")
	if err != nil || len(page.Models) != 2 || page.Bookmark == "" {
		t.Fatalf("%+v %v", page, err)
	}
	next, err := c.List(fakeledger.Query(stub, user1), "m", 2, page.Bookmark)
	if err != nil || len(next.Models) != 1 || next.Models[0].Version != "3" || next.Bookmark != "" {
		t.Fatalf("%+v %v", next, err)
	}
	if _, err := c.List(fakeledger.Query(stub, user1), "", 0, ""); err == nil {
		t.Fatal("page size 0 accepted")
	}
}

func mustKey(t *testing.T, stub *fakeledger.Stub, name, version string) string {
	t.Helper()
	k, err := modelKey(fakeledger.Query(stub, user1), name, version)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
