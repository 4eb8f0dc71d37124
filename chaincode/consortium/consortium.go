// Package consortium records which organizations are members of the consortium.
package consortium

import (
	"unicode/utf8"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/fabricml/fabricml/chaincode/caller"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

// Version is the chaincode version, set at link time by the network tooling.
var Version = "dev"

const (
	memberKeyType    = "member"
	heartbeatKeyType = "heartbeat"
)

// MaxDisplayNameLen bounds what a member may call itself.
const MaxDisplayNameLen = 64

// Member is one organization's record in the consortium.
type Member struct {
	MSPID       string `json:"mspId"`
	DisplayName string `json:"displayName"`
	Admin       string `json:"admin"`
	JoinedAt    string `json:"joinedAt"`
	JoinedTxID  string `json:"joinedTxId"`
	UpdatedAt   string `json:"updatedAt"`
}

// Heartbeat proves that an organization could get a transaction endorsed,
// ordered and committed at a given time.
type Heartbeat struct {
	MSPID   string `json:"mspId"`
	Subject string `json:"subject"`
	At      string `json:"at"`
	TxID    string `json:"txId"`
}

// Info describes the deployed chaincode.
type Info struct {
	Version string `json:"version"`
	Members int    `json:"members"`
}

// Contract is the Consortium contract.
type Contract struct {
	contractapi.Contract
}

// New returns the contract under its public name.
func New() *Contract { return &Contract{Contract: contractapi.Contract{Name: "Consortium"}} }

// Join records (or renames) the caller's organization; only its admins may.
func (c *Contract) Join(ctx contractapi.TransactionContextInterface, displayName string) (*Member, error) {
	who, err := caller.Admin(ctx, "Join")
	if err != nil {
		return nil, err
	}
	if n := utf8.RuneCountInString(displayName); n == 0 || n > MaxDisplayNameLen {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "display name must be 1 to %d characters, got %d", MaxDisplayNameLen, n)
	}
	now, err := ledgerutil.TxTime(ctx)
	if err != nil {
		return nil, err
	}
	key, err := ledgerutil.Key(ctx, memberKeyType, who.MSPID)
	if err != nil {
		return nil, err
	}
	member, err := readMember(ctx, key)
	if err != nil {
		return nil, err
	}
	if member == nil {
		member = &Member{MSPID: who.MSPID, JoinedAt: now, JoinedTxID: ctx.GetStub().GetTxID()}
	}
	member.DisplayName = displayName
	member.Admin = who.Subject
	member.UpdatedAt = now
	return member, ledgerutil.PutJSONWithEvent(ctx, key, member, "MemberJoined")
}

// Heartbeat records that the caller's organization can commit transactions now.
func (c *Contract) Heartbeat(ctx contractapi.TransactionContextInterface) (*Heartbeat, error) {
	who, err := caller.Of(ctx)
	if err != nil {
		return nil, err
	}
	now, err := ledgerutil.TxTime(ctx)
	if err != nil {
		return nil, err
	}
	// One key per organization, so heartbeats of different orgs never conflict.
	key, err := ledgerutil.Key(ctx, heartbeatKeyType, who.MSPID)
	if err != nil {
		return nil, err
	}
	hb := &Heartbeat{MSPID: who.MSPID, Subject: who.Subject, At: now, TxID: ctx.GetStub().GetTxID()}
	_, err = ledgerutil.PutJSON(ctx, key, hb)
	return hb, err
}

// GetMember returns one member by MSP ID.
func (c *Contract) GetMember(ctx contractapi.TransactionContextInterface, mspID string) (*Member, error) {
	key, err := ledgerutil.Key(ctx, memberKeyType, mspID)
	if err != nil {
		return nil, ledgerutil.Context(err, "MSP ID")
	}
	var m Member
	if err := ledgerutil.GetExisting(ctx, key, &m, "no member with MSP ID %q", mspID); err != nil {
		return nil, err
	}
	return &m, nil
}

// ListMembers returns every member, ordered by MSP ID.
func (c *Contract) ListMembers(ctx contractapi.TransactionContextInterface) ([]*Member, error) {
	return ledgerutil.ListRecords[*Member](ctx, memberKeyType, nil, "listing members")
}

// WhoAmI returns the caller as the chaincode sees it, role attribute included.
func (c *Contract) WhoAmI(ctx contractapi.TransactionContextInterface) (*caller.Identity, error) {
	who, err := caller.Of(ctx)
	if err != nil {
		return nil, err
	}
	return &who, nil
}

// Info returns the chaincode version and the member count.
func (c *Contract) Info(ctx contractapi.TransactionContextInterface) (*Info, error) {
	members, err := c.ListMembers(ctx)
	if err != nil {
		return nil, err
	}
	return &Info{Version: Version, Members: len(members)}, nil
}

func readMember(ctx contractapi.TransactionContextInterface, key string) (*Member, error) {
	var m Member
	found, err := ledgerutil.GetJSON(ctx, key, &m)
	if err != nil || !found {
		return nil, err
	}
	return &m, nil
}

// MemberMSPIDs lists the MSP IDs of the consortium's members, in order.
func MemberMSPIDs(ctx contractapi.TransactionContextInterface) ([]string, error) {
	members, err := (&Contract{}).ListMembers(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(members))
	for i, m := range members {
		ids[i] = m.MSPID
	}
	return ids, nil
}
