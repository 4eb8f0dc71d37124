// Package caller reads who is invoking a transaction from the creator's certificate.
package caller

import (
	"slices"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

// Node roles come from the NodeOU the org's Fabric CA wrote into the certificate.
const (
	NodeRoleAdmin  = "admin"
	NodeRoleClient = "client"
	NodeRolePeer   = "peer"
)

// Identity is the caller as the chaincode sees it; every field comes from the
// signed certificate, never from transaction arguments.
type Identity struct {
	MSPID    string `json:"mspId"`
	Subject  string `json:"subject"`
	NodeRole string `json:"nodeRole"`
	Role     string `json:"role"`
}

// Of returns the identity that signed the current proposal.
func Of(ctx contractapi.TransactionContextInterface) (Identity, error) {
	id := ctx.GetClientIdentity()
	mspID, err := id.GetMSPID()
	if err != nil {
		return Identity{}, ledgerutil.Context(err, "reading the caller's MSP ID")
	}
	cert, err := id.GetX509Certificate()
	if err != nil {
		return Identity{}, ledgerutil.Context(err, "reading the caller's certificate")
	}
	if cert == nil {
		return Identity{}, ledgerutil.Refuse(ledgerutil.Forbidden, "the caller presented no X.509 certificate")
	}
	role, _, err := id.GetAttributeValue("role")
	if err != nil {
		return Identity{}, ledgerutil.Context(err, "reading the caller's role attribute")
	}
	return Identity{
		MSPID:    mspID,
		Subject:  cert.Subject.CommonName,
		NodeRole: nodeRole(cert.Subject.OrganizationalUnit),
		Role:     role,
	}, nil
}

// nodeRole picks the NodeOU; the CA also writes affiliation OUs, which are ignored.
func nodeRole(units []string) string {
	for _, r := range []string{NodeRoleAdmin, NodeRolePeer, NodeRoleClient, "orderer"} {
		if slices.Contains(units, r) {
			return r
		}
	}
	return ""
}

// RequireAdmin fails unless the caller is an admin of its organization.
func (c Identity) RequireAdmin(action string) error {
	if c.NodeRole != NodeRoleAdmin {
		return ledgerutil.Refuse(ledgerutil.Forbidden, "%s needs an org admin identity; caller %q of %s has node role %q",
			action, c.Subject, c.MSPID, c.NodeRole)
	}
	return nil
}

// RequireRole fails unless the caller's certificate carries the role attribute.
func (c Identity) RequireRole(role, action string) error {
	if c.Role != role {
		return ledgerutil.Refuse(ledgerutil.Forbidden, "%s needs an identity with role=%s; %q of %s has role %q",
			action, role, c.Subject, c.MSPID, c.Role)
	}
	return nil
}

// RequireRoleOrAdmin fails unless the caller carries the role attribute or is an org admin.
func (c Identity) RequireRoleOrAdmin(role, action string) error {
	if c.Role != role && c.NodeRole != NodeRoleAdmin {
		return ledgerutil.Refuse(ledgerutil.Forbidden, "%s needs an identity with role=%s or an org admin; %q of %s has role %q",
			action, role, c.Subject, c.MSPID, c.Role)
	}
	return nil
}

// Admin is the caller, refused (FORBIDDEN) unless it is an admin of its organization.
func Admin(ctx contractapi.TransactionContextInterface, action string) (Identity, error) {
	who, err := Of(ctx)
	if err != nil {
		return who, err
	}
	return who, who.RequireAdmin(action)
}

// WithRoleOrAdmin is the caller, refused (FORBIDDEN) unless it carries the role or is an
// org admin.
func WithRoleOrAdmin(ctx contractapi.TransactionContextInterface, role, action string) (Identity, error) {
	who, err := Of(ctx)
	if err != nil {
		return who, err
	}
	return who, who.RequireRoleOrAdmin(role, action)
}

// WithRole is the caller, refused (FORBIDDEN) unless its certificate carries the role.
func WithRole(ctx contractapi.TransactionContextInterface, role, action string) (Identity, error) {
	who, err := Of(ctx)
	if err != nil {
		return who, err
	}
	return who, who.RequireRole(role, action)
}
