package governance

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"google.golang.org/protobuf/proto"

	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

// Policies a new org's group must define, by the group it is added to.
var orgPolicies = map[string][]string{
	applicationPath: {"Admins", "Endorsement", "Readers", "Writers"},
	ordererPath:     {"Admins", "Readers", "Writers"},
}

// checkOrgDefinition checks each group the update creates for the newcomer: an MSP
// named after it with NodeOUs on, and policies that name no other org (a policy that
// let another org's admin sign as the newcomer would give that org a second vote).
func checkOrgDefinition(subject string, d *decodedUpdate, added []string) (*OrgDefinition, error) {
	var def *OrgDefinition
	var first *msp.FabricMSPConfig
	for _, path := range added {
		g := d.write[kindGroup+" "+path]
		if g.modPolicy != defaultModPolicy {
			return nil, ledgerutil.Refuse(ledgerutil.Invalid, "group %s must have mod_policy %q (its own admins), got %q", path, defaultModPolicy, g.modPolicy)
		}
		if len(g.group.Groups) != 0 {
			return nil, ledgerutil.Refuse(ledgerutil.Invalid, "group %s of an organization may not contain groups", path)
		}
		conf, err := fabricMSP(subject, path, g.group)
		if err != nil {
			return nil, err
		}
		if first != nil && !proto.Equal(first, conf) {
			return nil, ledgerutil.Refuse(ledgerutil.Invalid, "the MSP of %s differs between its groups", subject)
		}
		first = conf
		if err := checkOrgPolicies(subject, path, g.group); err != nil {
			return nil, err
		}
		if def == nil {
			def = &OrgDefinition{MSPName: conf.Name, NodeOUs: true, RootCertDigests: digests(conf.RootCerts), TLSRootCertDigests: digests(conf.TlsRootCerts)}
		}
		def.Groups = append(def.Groups, path)
	}
	return def, nil
}

func fabricMSP(subject, path string, g *common.ConfigGroup) (*msp.FabricMSPConfig, error) {
	v, ok := g.Values["MSP"]
	if !ok {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "group %s has no MSP value", path)
	}
	var outer msp.MSPConfig
	if err := proto.Unmarshal(v.Value, &outer); err != nil {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "MSP value of %s is not an msp.MSPConfig: %v", path, err)
	}
	if outer.Type != 0 {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "MSP of %s has type %d; only X.509 (FABRIC, 0) is allowed", path, outer.Type)
	}
	var conf msp.FabricMSPConfig
	if err := proto.Unmarshal(outer.Config, &conf); err != nil {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "MSP of %s is not an msp.FabricMSPConfig: %v", path, err)
	}
	switch {
	case conf.Name != subject:
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "group %s defines the MSP %q, not %s", path, conf.Name, subject)
	case len(conf.RootCerts) == 0:
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "MSP of %s has no root CA certificate", path)
	case conf.FabricNodeOus == nil || !conf.FabricNodeOus.Enable:
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "MSP of %s must enable NodeOUs: admins are told apart by their certificate's OU", path)
	}
	return &conf, nil
}

func checkOrgPolicies(subject, path string, g *common.ConfigGroup) error {
	parent := path[:len(path)-len(subject)-1]
	for _, name := range orgPolicies[parent] {
		if _, ok := g.Policies[name]; !ok {
			return ledgerutil.Refuse(ledgerutil.Invalid, "group %s has no %s policy", path, name)
		}
	}
	for _, name := range sortedKeys(g.Policies) {
		if err := checkOwnPrincipals(subject, path+"/"+name, g.Policies[name]); err != nil {
			return err
		}
	}
	return nil
}

// checkOwnPrincipals refuses a policy that is not a signature policy over the org's own MSP.
func checkOwnPrincipals(subject, path string, p *common.ConfigPolicy) error {
	if p.Policy == nil || p.Policy.Type != int32(common.Policy_SIGNATURE) {
		return ledgerutil.Refuse(ledgerutil.Invalid, "policy %s must be a signature policy", path)
	}
	var env common.SignaturePolicyEnvelope
	if err := proto.Unmarshal(p.Policy.Value, &env); err != nil {
		return ledgerutil.Refuse(ledgerutil.Invalid, "policy %s is not a SignaturePolicyEnvelope: %v", path, err)
	}
	for _, principal := range env.Identities {
		id, err := principalMSP(principal)
		if err != nil {
			return ledgerutil.Context(err, "policy "+path)
		}
		if id != subject {
			return ledgerutil.Refuse(ledgerutil.Invalid, "policy %s names %s; a new org's policies may name only %s", path, id, subject)
		}
	}
	return nil
}

func principalMSP(p *msp.MSPPrincipal) (string, error) {
	switch p.PrincipalClassification {
	case msp.MSPPrincipal_ROLE:
		var r msp.MSPRole
		if err := proto.Unmarshal(p.Principal, &r); err != nil {
			return "", ledgerutil.Refuse(ledgerutil.Invalid, "role principal is corrupt: %v", err)
		}
		return r.MspIdentifier, nil
	case msp.MSPPrincipal_ORGANIZATION_UNIT:
		var ou msp.OrganizationUnit
		if err := proto.Unmarshal(p.Principal, &ou); err != nil {
			return "", ledgerutil.Refuse(ledgerutil.Invalid, "OU principal is corrupt: %v", err)
		}
		return ou.MspIdentifier, nil
	case msp.MSPPrincipal_IDENTITY:
		var id msp.SerializedIdentity
		if err := proto.Unmarshal(p.Principal, &id); err != nil {
			return "", ledgerutil.Refuse(ledgerutil.Invalid, "identity principal is corrupt: %v", err)
		}
		return id.Mspid, nil
	default:
		return "", ledgerutil.Refuse(ledgerutil.Invalid, "principal classification %s is not allowed", p.PrincipalClassification)
	}
}

func digests(certs [][]byte) []string {
	out := make([]string, len(certs))
	for i, c := range certs {
		sum := sha256.Sum256(c)
		out[i] = hex.EncodeToString(sum[:])
	}
	return out
}
