package registry

import (
	"encoding/json"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

const suspensionKeyType = "modelsuspension"

// Suspension is one org's halt of its own use of a version: its services neither
// anchor nor attest with it, while other orgs' services go on.
type Suspension struct {
	Ref string `json:"ref"`
	StatusChange
}

func suspensionKey(ctx contractapi.TransactionContextInterface, ref, msp string) (string, error) {
	name, version, err := SplitRef(ref)
	if err != nil {
		return "", err
	}
	return ledgerutil.Key(ctx, suspensionKeyType, name, version, msp)
}

// Suspend stops the caller org's own use of a version at once, with a reason; its
// admins only. One key per org, so suspensions of several orgs never conflict.
func (c *Contract) Suspend(ctx contractapi.TransactionContextInterface, ref, reason string) (*Suspension, error) {
	who, _, err := memberAdmin(ctx, "Suspend")
	if err != nil {
		return nil, err
	}
	if err := checkReason(reason); err != nil {
		return nil, err
	}
	prior, key, err := c.suspensionOfExisting(ctx, ref, who.MSPID)
	if err != nil {
		return nil, err
	}
	if prior != nil {
		return nil, ledgerutil.Refuse(ledgerutil.AlreadyDone, "%s already suspended its use of %s (transaction %s)", who.MSPID, ref, prior.TxID)
	}
	a, err := actor(ctx, who)
	if err != nil {
		return nil, err
	}
	s := &Suspension{Ref: ref, StatusChange: StatusChange{Actor: a, Reason: reason}}
	return s, ledgerutil.PutJSONWithEvent(ctx, key, s, "ModelSuspended")
}

// Resume lifts the caller org's suspension of a version; its admins only.
func (c *Contract) Resume(ctx contractapi.TransactionContextInterface, ref string) (*Suspension, error) {
	who, _, err := memberAdmin(ctx, "Resume")
	if err != nil {
		return nil, err
	}
	prior, key, err := c.suspensionOfExisting(ctx, ref, who.MSPID)
	if err != nil {
		return nil, err
	}
	if prior == nil {
		return nil, ledgerutil.Refuse(ledgerutil.AlreadyDone, "%s has not suspended its use of %s", who.MSPID, ref)
	}
	if err := ctx.GetStub().DelState(key); err != nil {
		return nil, ledgerutil.Context(err, "writing the ledger")
	}
	raw, err := json.Marshal(prior)
	if err != nil {
		return nil, ledgerutil.Context(err, "encoding the event")
	}
	return prior, ctx.GetStub().SetEvent("ModelResumed", raw)
}

// suspensionOfExisting is msp's suspension of ref (or nil), refusing a ref that is not registered.
func (c *Contract) suspensionOfExisting(ctx contractapi.TransactionContextInterface, ref, msp string) (*Suspension, string, error) {
	if _, _, err := c.load(ctx, ref); err != nil {
		return nil, "", err
	}
	return suspensionOf(ctx, ref, msp)
}

// suspensionOf is msp's suspension of ref, or nil.
func suspensionOf(ctx contractapi.TransactionContextInterface, ref, msp string) (*Suspension, string, error) {
	key, err := suspensionKey(ctx, ref, msp)
	if err != nil {
		return nil, "", err
	}
	var s Suspension
	found, err := getJSON(ctx, key, &s)
	if err != nil || !found {
		return nil, key, err
	}
	return &s, key, nil
}

// SuspendedBy is whether msp suspended its use of ref (for the Attestation contract).
func SuspendedBy(ctx contractapi.TransactionContextInterface, ref, msp string) (bool, error) {
	s, _, err := suspensionOf(ctx, ref, msp)
	return s != nil, err
}

// suspendedOrgs lists the orgs that suspended their use of ref, in MSP ID order.
func suspendedOrgs(ctx contractapi.TransactionContextInterface, name, version string) ([]string, error) {
	suspensions, err := ledgerutil.ListRecords[Suspension](ctx, suspensionKeyType, []string{name, version}, "listing suspensions")
	if err != nil {
		return nil, err
	}
	out := make([]string, len(suspensions))
	for i, s := range suspensions {
		out[i] = s.MSPID
	}
	return out, nil
}
