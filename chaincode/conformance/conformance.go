// Package conformance holds the transactions that the Gateway client conformance
// tests need: results, transient data, errors, events, private data, key-level
// endorsement and per-org behaviour. Every key it writes starts with "conformance".
package conformance

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"

	"github.com/hyperledger/fabric-chaincode-go/v2/pkg/statebased"
	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

const keyType = "conformance"

// Contract is the Conformance contract; LocalMSPID is the org whose peer runs this server.
type Contract struct {
	contractapi.Contract
	LocalMSPID string
}

// New returns the contract for the server of the given organization.
func New(localMSPID string) *Contract {
	return &Contract{Contract: contractapi.Contract{Name: "Conformance"}, LocalMSPID: localMSPID}
}

func key(ctx contractapi.TransactionContextInterface, k string) (string, error) {
	if k == "" {
		return "", ledgerutil.Refuse(ledgerutil.Invalid, "key must not be empty")
	}
	return ledgerutil.Key(ctx, keyType, k)
}

// Put stores value under key and returns it.
func (c *Contract) Put(ctx contractapi.TransactionContextInterface, k, value string) (string, error) {
	ck, err := key(ctx, k)
	if err != nil {
		return "", err
	}
	return value, ctx.GetStub().PutState(ck, []byte(value))
}

// Get returns the value under key.
func (c *Contract) Get(ctx contractapi.TransactionContextInterface, k string) (string, error) {
	ck, err := key(ctx, k)
	if err != nil {
		return "", err
	}
	v, err := ctx.GetStub().GetState(ck)
	if err != nil {
		return "", err
	}
	if v == nil {
		return "", ledgerutil.Refuse(ledgerutil.NotFound, "no value for key %q", k)
	}
	return string(v), nil
}

// PutWithEvent stores value under key and emits a chaincode event with the value as payload.
func (c *Contract) PutWithEvent(ctx contractapi.TransactionContextInterface, k, value, event string) (string, error) {
	if _, err := c.Put(ctx, k, value); err != nil {
		return "", err
	}
	return value, ctx.GetStub().SetEvent(event, []byte(value))
}

// EchoTransient returns the transient field `name`, which never reaches the ledger.
func (c *Contract) EchoTransient(ctx contractapi.TransactionContextInterface, name string) (string, error) {
	t, err := ctx.GetStub().GetTransient()
	if err != nil {
		return "", err
	}
	v, ok := t[name]
	if !ok {
		return "", ledgerutil.Refuse(ledgerutil.NotFound, "no transient field %q", name)
	}
	return string(v), nil
}

// HashTransient returns the SHA-256 (hex) of the transient field `name`: proof that the
// chaincode saw it, without the value reaching the ledger.
func (c *Contract) HashTransient(ctx contractapi.TransactionContextInterface, name string) (string, error) {
	v, err := c.EchoTransient(ctx, name)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:]), nil
}

// Fail always refuses (CONFLICT, a stand-in for any refusal) with the given message.
func (c *Contract) Fail(_ contractapi.TransactionContextInterface, message string) error {
	return ledgerutil.Refuse(ledgerutil.Conflict, "%s", message)
}

// Panic crashes the transaction; the server turns it into an error response.
func (c *Contract) Panic(_ contractapi.TransactionContextInterface, message string) error {
	panic(message)
}

// FailOnOrg fails only on the given org's endorser, and otherwise stores a value.
func (c *Contract) FailOnOrg(ctx contractapi.TransactionContextInterface, mspID, k string) (string, error) {
	if c.LocalMSPID == mspID {
		return "", ledgerutil.Refuse(ledgerutil.Forbidden, "endorsement refused by %s on purpose", mspID)
	}
	return c.Put(ctx, k, "endorsed")
}

// PutEndorserOrg writes the endorsing org's MSP ID, so different orgs endorse different writes.
func (c *Contract) PutEndorserOrg(ctx contractapi.TransactionContextInterface, k string) (string, error) {
	return c.Put(ctx, k, c.LocalMSPID)
}

// PutPrivate stores the transient field "value" in a private data collection.
func (c *Contract) PutPrivate(ctx contractapi.TransactionContextInterface, collection, k string) error {
	t, err := ctx.GetStub().GetTransient()
	if err != nil {
		return err
	}
	v, ok := t["value"]
	if !ok {
		return ledgerutil.Refuse(ledgerutil.Invalid, "the private value must be sent as transient field \"value\"")
	}
	ck, err := key(ctx, k)
	if err != nil {
		return err
	}
	return ctx.GetStub().PutPrivateData(collection, ck, v)
}

// GetPrivate reads a private value; only peers of member orgs hold it.
func (c *Contract) GetPrivate(ctx contractapi.TransactionContextInterface, collection, k string) (string, error) {
	ck, err := key(ctx, k)
	if err != nil {
		return "", err
	}
	v, err := ctx.GetStub().GetPrivateData(collection, ck)
	if err != nil {
		return "", err
	}
	if v == nil {
		return "", ledgerutil.Refuse(ledgerutil.NotFound, "no private value for key %q in %s", k, collection)
	}
	return string(v), nil
}

// SetKeyEndorsers requires the peers of every listed org to endorse later writes of key.
func (c *Contract) SetKeyEndorsers(ctx contractapi.TransactionContextInterface, k string, mspIDs []string) error {
	if len(mspIDs) == 0 {
		return ledgerutil.Refuse(ledgerutil.Invalid, "at least one MSP ID is needed")
	}
	ck, err := key(ctx, k)
	if err != nil {
		return err
	}
	ep, err := statebased.NewStateEP(nil)
	if err != nil {
		return err
	}
	sorted := slices.Clone(mspIDs)
	slices.Sort(sorted)
	if err := ep.AddOrgs(statebased.RoleTypePeer, sorted...); err != nil {
		return err
	}
	policy, err := ep.Policy()
	if err != nil {
		return err
	}
	return ctx.GetStub().SetStateValidationParameter(ck, policy)
}
