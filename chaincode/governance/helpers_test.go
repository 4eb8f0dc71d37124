package governance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"maps"
	"math/big"
	"testing"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"github.com/hyperledger/fabric-protos-go-apiv2/orderer"
	"github.com/hyperledger/fabric-protos-go-apiv2/orderer/etcdraft"
	"google.golang.org/protobuf/proto"

	"github.com/fabricml/fabricml/chaincode/consortium"
	"github.com/fabricml/fabricml/chaincode/internal/fakeledger"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

// admin is an identity with a real key and certificate, as an org's Fabric CA issues it.
type admin struct{ *fakeledger.Signer }

func (a admin) serialized() []byte {
	raw, _ := proto.Marshal(&msp.SerializedIdentity{Mspid: a.MSPID, IdBytes: a.PEM})
	return raw
}

// newIdentity issues a self-signed certificate with the given NodeOU.
func newIdentity(t *testing.T, mspID, name, ou string) admin {
	t.Helper()
	return admin{fakeledger.NewSigner(t, mspID, name, ou, nil)}
}

// sign makes a's ConfigSignature over update (low S, as Fabric's signers do).
func (a admin) sign(t *testing.T, update []byte) string {
	t.Helper()
	header, _ := proto.Marshal(&common.SignatureHeader{Creator: a.serialized(), Nonce: []byte("nonce-" + a.MSPID)})
	digest := sha256.Sum256(append(append([]byte{}, header...), update...))
	r, s, err := ecdsa.Sign(rand.Reader, a.Key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	if half := new(big.Int).Rsh(elliptic.P256().Params().N, 1); s.Cmp(half) > 0 {
		s.Sub(elliptic.P256().Params().N, s)
	}
	der, _ := asn1Marshal(r, s)
	raw, _ := proto.Marshal(&common.ConfigSignature{SignatureHeader: header, Signature: der})
	return base64.StdEncoding.EncodeToString(raw)
}

// as runs f as one submitted transaction by a (its real certificate in the context).
func as[R any](stub *fakeledger.Stub, a admin, f func(fakeledger.Ctx) (R, error)) (R, error) {
	return fakeledger.SubmitAs(stub, a.Signer, f)
}

// consortiumOf returns a ledger where Org1MSP..Org3MSP joined, and their admins.
func consortiumOf(t *testing.T) (*fakeledger.Stub, map[string]admin) {
	t.Helper()
	stub := fakeledger.NewStub()
	admins := map[string]admin{}
	for _, m := range []string{"Org1MSP", "Org2MSP", "Org3MSP"} {
		admins[m] = newIdentity(t, m, "admin", "admin")
		if _, err := as(stub, admins[m], func(ctx fakeledger.Ctx) (*consortium.Member, error) { return consortium.New().Join(ctx, m) }); err != nil {
			t.Fatal(err)
		}
	}
	return stub, admins
}

// ---- config updates, shaped as configtxlator compute_update writes them --------------

func policy(t *testing.T, msps ...string) *common.ConfigPolicy {
	t.Helper()
	env := &common.SignaturePolicyEnvelope{Rule: &common.SignaturePolicy{}}
	for _, m := range msps {
		role, _ := proto.Marshal(&msp.MSPRole{MspIdentifier: m, Role: msp.MSPRole_ADMIN})
		env.Identities = append(env.Identities, &msp.MSPPrincipal{PrincipalClassification: msp.MSPPrincipal_ROLE, Principal: role})
	}
	raw, _ := proto.Marshal(env)
	return &common.ConfigPolicy{ModPolicy: "Admins", Policy: &common.Policy{Type: int32(common.Policy_SIGNATURE), Value: raw}}
}

func mspValue(t *testing.T, name string) *common.ConfigValue {
	t.Helper()
	conf, _ := proto.Marshal(&msp.FabricMSPConfig{
		Name: name, RootCerts: [][]byte{[]byte("root-" + name)}, TlsRootCerts: [][]byte{[]byte("tls-" + name)},
		FabricNodeOus: &msp.FabricNodeOUs{Enable: true},
	})
	raw, _ := proto.Marshal(&msp.MSPConfig{Type: 0, Config: conf})
	return &common.ConfigValue{ModPolicy: "Admins", Value: raw}
}

// orgGroup is a newcomer's group whose policies name principal (normally itself).
func orgGroup(t *testing.T, mspName, principal string) *common.ConfigGroup {
	return &common.ConfigGroup{
		ModPolicy: "Admins",
		Values:    map[string]*common.ConfigValue{"MSP": mspValue(t, mspName)},
		Policies: map[string]*common.ConfigPolicy{
			"Admins": policy(t, principal), "Readers": policy(t, principal),
			"Writers": policy(t, principal), "Endorsement": policy(t, principal),
		},
	}
}

// applicationGroup is /Channel/Application as written when its member list changes.
func applicationGroup(version uint64, orgs map[string]*common.ConfigGroup) *common.ConfigGroup {
	g := &common.ConfigGroup{Version: version, ModPolicy: "Admins", Groups: orgs,
		Values:   map[string]*common.ConfigValue{"Capabilities": {Version: 0}},
		Policies: map[string]*common.ConfigPolicy{},
	}
	for _, p := range []string{"Admins", "Endorsement", "LifecycleEndorsement", "Readers", "Writers"} {
		g.Policies[p] = &common.ConfigPolicy{Version: 0}
	}
	return g
}

func unchangedOrgs(names ...string) map[string]*common.ConfigGroup {
	out := map[string]*common.ConfigGroup{}
	for _, n := range names {
		out[n] = &common.ConfigGroup{Version: 0}
	}
	return out
}

func channel(app *common.ConfigGroup, ord *common.ConfigGroup) *common.ConfigGroup {
	g := &common.ConfigGroup{Version: 0, Groups: map[string]*common.ConfigGroup{}}
	if app != nil {
		g.Groups["Application"] = app
	}
	if ord != nil {
		g.Groups["Orderer"] = ord
	}
	return g
}

func encode(t *testing.T, u *common.ConfigUpdate) []byte {
	t.Helper()
	u.ChannelId = "consortium"
	raw, err := proto.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// addOrgUpdate adds newcomer (with MSP mspName, policies naming principal) to Application.
func addOrgUpdate(t *testing.T, newcomer, mspName, principal string, keep ...string) []byte {
	read := channel(applicationGroup(1, unchangedOrgs(keep...)), nil)
	orgs := unchangedOrgs(keep...)
	orgs[newcomer] = orgGroup(t, mspName, principal)
	write := channel(applicationGroup(2, orgs), nil)
	return encode(t, &common.ConfigUpdate{ReadSet: read, WriteSet: write})
}

// removeOrgUpdate rewrites Application's member list to keep only keep.
func removeOrgUpdate(t *testing.T, keep ...string) []byte {
	read := channel(applicationGroup(1, unchangedOrgs(keep...)), nil)
	write := channel(applicationGroup(2, unchangedOrgs(keep...)), nil)
	return encode(t, &common.ConfigUpdate{ReadSet: read, WriteSet: write})
}

// batchSizeUpdate changes /Channel/Orderer/BatchSize (version 0 to 1).
func batchSizeUpdate(t *testing.T, maxMessages uint32) []byte {
	raw, _ := proto.Marshal(&orderer.BatchSize{MaxMessageCount: maxMessages, AbsoluteMaxBytes: 10 << 20, PreferredMaxBytes: 2 << 20})
	read := channel(nil, &common.ConfigGroup{Version: 0})
	write := channel(nil, &common.ConfigGroup{Version: 0, Values: map[string]*common.ConfigValue{
		"BatchSize": {Version: 1, ModPolicy: "Admins", Value: raw},
	}})
	return encode(t, &common.ConfigUpdate{ReadSet: read, WriteSet: write})
}

// consenterUpdate sets the Raft consenter set to hosts (host:port strings split by the caller).
func consenterUpdate(t *testing.T, consenters ...*etcdraft.Consenter) []byte {
	meta, _ := proto.Marshal(&etcdraft.ConfigMetadata{Consenters: consenters})
	ct, _ := proto.Marshal(&orderer.ConsensusType{Type: "etcdraft", Metadata: meta})
	read := channel(nil, &common.ConfigGroup{Version: 0})
	write := channel(nil, &common.ConfigGroup{Version: 0, Values: map[string]*common.ConfigValue{
		"ConsensusType": {Version: 1, ModPolicy: "Admins", Value: ct},
	}})
	return encode(t, &common.ConfigUpdate{ReadSet: read, WriteSet: write})
}

func raft(port uint32) *etcdraft.Consenter {
	return &etcdraft.Consenter{Host: "127.0.0.1", Port: port, ClientTlsCert: []byte("c"), ServerTlsCert: []byte("s")}
}

func asn1Marshal(r, s *big.Int) ([]byte, error) { return asn1.Marshal(ecdsaSignature{R: r, S: s}) }

// snapshot copies the committed world state, to show a refusal changed nothing.
func snapshot(stub *fakeledger.Stub) map[string]string {
	out := map[string]string{}
	for k, v := range stub.State {
		out[k] = string(v)
	}
	return out
}

// refused asserts err carries code and the ledger equals before.
func refused(t *testing.T, err error, code ledgerutil.Code, stub *fakeledger.Stub, before map[string]string) {
	t.Helper()
	if err == nil {
		t.Fatalf("expected a %s refusal, got success", code)
	}
	if got := ledgerutil.CodeOf(err); got != code {
		t.Fatalf("expected %s, got %s: %v", code, got, err)
	}
	if !maps.Equal(before, snapshot(stub)) {
		t.Fatalf("a refused call changed the ledger (%v)", err)
	}
}
