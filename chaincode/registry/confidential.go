package registry

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/fabricml/fabricml/chaincode/caller"
	"github.com/fabricml/fabricml/chaincode/consortium"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

// Confidential provenance lives in the registering org's implicit collection, which
// only its peers hold. Implicit collections cannot be member-only-read, so any channel
// member could evaluate a read on those peers: GetConfidential itself decides who reads.

const grantKeyType = "confidentialgrant"

// ConfidentialGrant lets another member org read a version's confidential provenance
// (on the owner's peers). It is stored in the owner's collection: no other org learns
// whom the owner shares with, and no other org endorses it.
type ConfidentialGrant struct {
	Ref       string `json:"ref"`
	Grantee   string `json:"grantee"`
	By        Actor  `json:"by"`
	Withdrawn *Actor `json:"withdrawn,omitempty" metadata:",optional"`
}

func grantKey(ctx contractapi.TransactionContextInterface, ref, grantee string) (string, error) {
	name, version, err := SplitRef(ref)
	if err != nil {
		return "", err
	}
	return ledgerutil.Key(ctx, grantKeyType, name, version, grantee)
}

// PutConfidential stores confidential provenance (transient field "confidential") in the
// registering org's own collection. Endorsed by that org alone, so the plaintext never
// reaches another org's peer; it must hash to the digest recorded at registration.
func (c *Contract) PutConfidential(ctx contractapi.TransactionContextInterface, ref string) error {
	who, err := caller.Of(ctx)
	if err != nil {
		return err
	}
	m, key, err := c.load(ctx, ref)
	if err != nil {
		return err
	}
	if who.MSPID != m.RegisteredBy.MSPID || (who.Role != "trainer" && who.NodeRole != caller.NodeRoleAdmin) {
		return ledgerutil.Refuse(ledgerutil.Forbidden, "only a trainer or admin of %s, which registered %s, may store its confidential provenance",
			m.RegisteredBy.MSPID, ref)
	}
	if m.ConfidentialDigest == "" {
		return ledgerutil.Refuse(ledgerutil.Conflict, "%s was registered without a confidentialDigest", ref)
	}
	transient, err := ctx.GetStub().GetTransient()
	if err != nil {
		return ledgerutil.Context(err, "reading transient data")
	}
	secret := transient[confidentialField]
	sum := sha256.Sum256(secret)
	if len(secret) == 0 || hex.EncodeToString(sum[:]) != m.ConfidentialDigest {
		return ledgerutil.Refuse(ledgerutil.Invalid, "transient field %q must hold the data whose SHA-256 was registered for %s",
			confidentialField, ref)
	}
	return ctx.GetStub().PutPrivateData(ImplicitCollection(m.RegisteredBy.MSPID), key, secret)
}

// GetConfidential returns a version's confidential provenance to an admin, trainer or
// auditor of the registering org or of an org it granted, evaluated on the registering
// org's peers (the only ones holding it). Everyone else is refused before anything is
// read. A chaincode cannot tell an evaluation from a submission: a reader who submits
// this call puts the plaintext into a block, which is that reader disclosing it.
func (c *Contract) GetConfidential(ctx contractapi.TransactionContextInterface, ref string) (string, error) {
	m, key, err := c.load(ctx, ref)
	if err != nil {
		return "", err
	}
	if m.ConfidentialDigest == "" {
		return "", ledgerutil.Refuse(ledgerutil.NotFound, "%s has no confidential provenance", ref)
	}
	if err := mayReadConfidential(ctx, m); err != nil {
		return "", err
	}
	raw, err := ctx.GetStub().GetPrivateData(ImplicitCollection(m.RegisteredBy.MSPID), key)
	if err != nil {
		return "", ledgerutil.Context(err, "reading the confidential provenance of "+ref)
	}
	if raw == nil {
		return "", ledgerutil.Refuse(ledgerutil.NotFound, "the confidential provenance of %s is held only by %s's peers", ref, m.RegisteredBy.MSPID)
	}
	sum := sha256.Sum256(raw)
	if hex.EncodeToString(sum[:]) != m.ConfidentialDigest {
		return "", ledgerutil.Refuse(ledgerutil.Internal, "the confidential provenance of %s does not match its public digest", ref)
	}
	return string(raw), nil
}

// mayReadConfidential: an admin, trainer or auditor of the owner or of a grantee.
func mayReadConfidential(ctx contractapi.TransactionContextInterface, m *ModelVersion) error {
	who, err := caller.Of(ctx)
	if err != nil {
		return err
	}
	if who.NodeRole != caller.NodeRoleAdmin && who.Role != "trainer" && who.Role != "auditor" {
		return ledgerutil.Refuse(ledgerutil.Forbidden, "confidential provenance is read by an admin, trainer or auditor; %q of %s has role %q",
			who.Subject, who.MSPID, who.Role)
	}
	owner := m.RegisteredBy.MSPID
	if who.MSPID == owner {
		return nil
	}
	g, err := grantOf(ctx, m, who.MSPID)
	if err != nil {
		return err
	}
	if g == nil || g.Withdrawn != nil {
		return ledgerutil.Refuse(ledgerutil.Forbidden, "%s has not granted %s access to the confidential provenance of %s", owner, who.MSPID, m.Ref())
	}
	return nil
}

// grantOf reads the owner's grant to grantee, from the owner's collection.
func grantOf(ctx contractapi.TransactionContextInterface, m *ModelVersion, grantee string) (*ConfidentialGrant, error) {
	k, err := grantKey(ctx, m.Ref(), grantee)
	if err != nil {
		return nil, err
	}
	raw, err := ctx.GetStub().GetPrivateData(ImplicitCollection(m.RegisteredBy.MSPID), k)
	if err != nil {
		return nil, ledgerutil.Context(err, "reading the confidential grants of "+m.Ref())
	}
	if raw == nil {
		return nil, nil
	}
	var g ConfidentialGrant
	if err := ledgerutil.DecodeRecord(k, raw, &g); err != nil {
		return nil, err
	}
	return &g, nil
}

// GrantConfidential lets another member org read the confidential provenance of a
// version the caller's org registered; its admins only, endorsed by its peers alone.
func (c *Contract) GrantConfidential(ctx contractapi.TransactionContextInterface, ref, grantee string) (*ConfidentialGrant, error) {
	m, who, err := c.ownerAdmin(ctx, ref, "GrantConfidential")
	if err != nil {
		return nil, err
	}
	members, err := consortium.MemberMSPIDs(ctx)
	if err != nil {
		return nil, err
	}
	if grantee == who.MSPID || !slices.Contains(members, grantee) {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "grantee %q must be another consortium member (%v)", grantee, members)
	}
	by, err := actor(ctx, who)
	if err != nil {
		return nil, err
	}
	g := &ConfidentialGrant{Ref: ref, Grantee: grantee, By: by}
	return g, putGrant(ctx, m, g)
}

// WithdrawConfidentialGrant ends a grant (the record stays, marked withdrawn); the
// owner's admins only, endorsed by its peers alone.
func (c *Contract) WithdrawConfidentialGrant(ctx contractapi.TransactionContextInterface, ref, grantee string) (*ConfidentialGrant, error) {
	m, who, err := c.ownerAdmin(ctx, ref, "WithdrawConfidentialGrant")
	if err != nil {
		return nil, err
	}
	g, err := grantOf(ctx, m, grantee)
	if err != nil {
		return nil, err
	}
	if g == nil || g.Withdrawn != nil {
		return nil, ledgerutil.Refuse(ledgerutil.AlreadyDone, "%s holds no grant for %s", grantee, ref)
	}
	by, err := actor(ctx, who)
	if err != nil {
		return nil, err
	}
	g.Withdrawn = &by
	return g, putGrant(ctx, m, g)
}

func putGrant(ctx contractapi.TransactionContextInterface, m *ModelVersion, g *ConfidentialGrant) error {
	raw, err := json.Marshal(g)
	if err != nil {
		return ledgerutil.Context(err, "encoding the grant")
	}
	k, err := grantKey(ctx, g.Ref, g.Grantee)
	if err != nil {
		return err
	}
	return ctx.GetStub().PutPrivateData(ImplicitCollection(m.RegisteredBy.MSPID), k, raw)
}

// ownerAdmin loads ref for an admin of the org that registered it.
func (c *Contract) ownerAdmin(ctx contractapi.TransactionContextInterface, ref, action string) (*ModelVersion, caller.Identity, error) {
	who, err := caller.Admin(ctx, action)
	if err != nil {
		return nil, who, err
	}
	m, _, err := c.load(ctx, ref)
	if err != nil {
		return nil, who, err
	}
	if who.MSPID != m.RegisteredBy.MSPID {
		return nil, who, ledgerutil.Refuse(ledgerutil.Forbidden, "only %s, which registered %s, decides who reads its confidential provenance", m.RegisteredBy.MSPID, ref)
	}
	return m, who, nil
}
