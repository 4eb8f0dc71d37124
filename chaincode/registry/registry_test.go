package registry

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/fabricml/fabricml/chaincode/consortium"
	"github.com/fabricml/fabricml/chaincode/internal/fakeledger"
)

var (
	admins = []fakeledger.Identity{
		{MSPID: "Org1MSP", Name: "admin", OU: "admin"},
		{MSPID: "Org2MSP", Name: "admin", OU: "admin"},
		{MSPID: "Org3MSP", Name: "admin", OU: "admin"},
	}
	trainer1 = fakeledger.Identity{MSPID: "Org1MSP", Name: "trainer", OU: "client", Attrs: map[string]string{"role": "trainer"}}
	user1    = fakeledger.Identity{MSPID: "Org1MSP", Name: "user1", OU: "client"}
	digestA  = strings.Repeat("a", 64)
	digestB  = strings.Repeat("b", 64)
)

// consortiumOfThree is a ledger where three orgs have joined.
func consortiumOfThree(t *testing.T) *fakeledger.Stub {
	t.Helper()
	stub := fakeledger.NewStub()
	for _, a := range admins {
		if _, err := fakeledger.Submit(stub, a, func(ctx fakeledger.Ctx) (*consortium.Member, error) { return consortium.New().Join(ctx, a.MSPID) }); err != nil {
			t.Fatal(err)
		}
	}
	return stub
}

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
		want    string
	}{
		"no trainer role":     {user1, request("m", "1"), "role=trainer"},
		"malformed digest":    {trainer1, request("m", "1", func(r *RegistrationRequest) { r.ManifestDigest = "xyz" }), "manifestDigest must be 64"},
		"bad name":            {trainer1, request("Bad Name", "1"), "name \"Bad Name\" is invalid"},
		"unknown field":       {trainer1, `{"name":"m","version":"1","registeredBy":{"mspId":"Org2MSP"}}`, "unknown field"},
		"not json":            {trainer1, `{"name":`, "registration is not valid"},
		"claims another org":  {trainer1, request("m", "1", func(r *RegistrationRequest) { r.TrainingOrgs = []string{"Org2MSP"} }), "must include the caller's organization Org1MSP"},
		"non-member org":      {trainer1, request("m", "1", func(r *RegistrationRequest) { r.TrainingOrgs = []string{"Org1MSP", "Org9MSP"} }), "Org9MSP is not a consortium member"},
		"unknown parent":      {trainer1, request("m", "2", func(r *RegistrationRequest) { r.Parents = []string{"m@1"} }), "model m@1 is not registered"},
		"own parent":          {trainer1, request("m", "2", func(r *RegistrationRequest) { r.Parents = []string{"m@2"} }), "its own parent"},
		"storage scheme":      {trainer1, request("m", "1", func(r *RegistrationRequest) { r.StorageURIs = []string{"http://x/y"} }), "allowed schemes"},
		"over the size limit": {trainer1, request("m", "1", func(r *RegistrationRequest) { r.Code.Repository = strings.Repeat("r", 5000) }), "the limit is 4096"},
		"negative rows":       {trainer1, request("m", "1", func(r *RegistrationRequest) { r.Datasets[0].Rows = -1 }), "rows must not be negative"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			stub := consortiumOfThree(t)
			before := len(stub.State)
			_, err := fakeledger.Submit(stub, tc.who, func(ctx fakeledger.Ctx) (*ModelVersion, error) { return New().Register(ctx, tc.request) })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want error containing %q, got %v", tc.want, err)
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
	_, err := fakeledger.Submit(stub, trainer1, func(ctx fakeledger.Ctx) (*ModelVersion, error) { return New().Register(ctx, request("m", "1")) })
	if err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Fatalf("duplicate accepted: %v", err)
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
	if _, err := fakeledger.Submit(stub, admins[0], func(ctx fakeledger.Ctx) (*ModelVersion, error) { return c.Approve(ctx, "m@1") }); err != nil {
		t.Fatal(err)
	}
	if _, err := fakeledger.Submit(stub, admins[0], func(ctx fakeledger.Ctx) (*ModelVersion, error) { return c.Approve(ctx, "m@1") }); err == nil || !strings.Contains(err.Error(), "already approved") {
		t.Fatalf("second approval by the same org accepted: %v", err)
	}
	if _, err := fakeledger.Submit(stub, admins[2], func(ctx fakeledger.Ctx) (*ModelVersion, error) { return c.Revoke(ctx, "m@1", "bias found in audit") }); err != nil {
		t.Fatal(err)
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
	register(t, stub, "b@1", func(r *RegistrationRequest) { r.Parents = []string{"base@1"}; r.Round = "task-1/round-3" })
	register(t, stub, "merged@1", func(r *RegistrationRequest) { r.Parents = []string{"a@1", "b@1"} })
	l, err := New().Lineage(fakeledger.Query(stub, user1), "merged@1")
	if err != nil {
		t.Fatal(err)
	}
	refs := []string{}
	for _, v := range l.Versions {
		refs = append(refs, v.Ref())
	}
	if fmt.Sprint(refs) != "[merged@1 a@1 b@1 base@1]" || len(l.Edges) != 4 || l.Rounds["b@1"] != "task-1/round-3" {
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
