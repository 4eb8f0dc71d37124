// Package governance records channel config proposals on the ledger: who proposed
// which config update and why, each member's ConfigSignature over it, and where the
// orderers applied it. The orderer decides whether the channel's policy is met; this
// contract makes the trail visible and refuses proposals that misdescribe their update.
package governance

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"slices"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/fabricml/fabricml/chaincode/caller"
	"github.com/fabricml/fabricml/chaincode/consortium"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
)

const (
	proposalKeyType  = "govproposal"
	signatureKeyType = "govsignature"
	outcomeKeyType   = "govoutcome"
	removedKeyType   = "govremoved"
	idHexLength      = 16
)

var idPattern = regexp.MustCompile(`^[0-9a-f]{16}$`)

// Contract is the Governance contract.
type Contract struct {
	contractapi.Contract
}

// New returns the contract under its public name.
func New() *Contract { return &Contract{Contract: contractapi.Contract{Name: "Governance"}} }

// memberAdmin is the caller, refused unless it is an admin of a recorded member org.
func memberAdmin(ctx contractapi.TransactionContextInterface, action string) (caller.Identity, error) {
	who, err := caller.Of(ctx)
	if err != nil {
		return who, ledgerutil.Context(err, "reading the caller")
	}
	if who.NodeRole != caller.NodeRoleAdmin {
		return who, ledgerutil.Refuse(ledgerutil.Forbidden, "%s needs an org admin identity; %q of %s has node role %q", action, who.Subject, who.MSPID, who.NodeRole)
	}
	members, err := currentMembers(ctx)
	if err != nil {
		return who, ledgerutil.Context(err, "reading the members")
	}
	if !slices.Contains(members, who.MSPID) {
		return who, ledgerutil.Refuse(ledgerutil.Forbidden, "%s is for member orgs; %s is not a recorded member", action, who.MSPID)
	}
	return who, nil
}

// Propose records a config update with its kind, subject and summary, after checking
// that the update does what they say. The proposal's ID is derived from the update.
func (c *Contract) Propose(ctx contractapi.TransactionContextInterface, request string) (*Proposal, error) {
	who, err := memberAdmin(ctx, "Propose")
	if err != nil {
		return nil, err
	}
	var req ProposalRequest
	if err := ledgerutil.DecodeStrict([]byte(request), "proposal", &req); err != nil {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "%v", err)
	}
	raw, err := req.validate()
	if err != nil {
		return nil, err
	}
	update, err := decodeUpdate(raw)
	if err != nil {
		return nil, err
	}
	members, err := currentMembers(ctx)
	if err != nil {
		return nil, ledgerutil.Context(err, "reading the members")
	}
	found, err := checkKind(req.Kind, req.Subject, update, members)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(raw)
	digest := hex.EncodeToString(sum[:])
	p := &Proposal{
		ID: digest[:idHexLength], Kind: req.Kind, Subject: req.Subject, Summary: req.Summary, Channel: update.channel,
		UpdateDigest: digest, ConfigUpdate: req.ConfigUpdate, Changes: update.changes(), Consenters: found.consenters,
		Org: found.org, Bundle: req.Bundle, Proposer: who.MSPID, ProposerSubject: who.Subject,
		TxID: ctx.GetStub().GetTxID(), Status: StatusOpen, Signatures: []Signature{}, Outcomes: []Outcome{},
	}
	if p.ProposedAt, err = ledgerutil.TxTime(ctx); err != nil {
		return nil, ledgerutil.Context(err, "reading the transaction time")
	}
	k, existing, err := c.load(ctx, p.ID)
	if err != nil && ledgerutil.CodeOf(err) != ledgerutil.NotFound {
		return nil, err
	}
	if existing != nil {
		return nil, sameProposal(existing, p)
	}
	return p, c.save(ctx, k, p, "ProposalCreated")
}

func sameProposal(existing, p *Proposal) error {
	if existing.UpdateDigest == p.UpdateDigest && existing.Kind == p.Kind && existing.Subject == p.Subject &&
		existing.Summary == p.Summary && existing.Proposer == p.Proposer {
		return ledgerutil.Refuse(ledgerutil.AlreadyDone, "proposal %s already records this update", existing.ID)
	}
	return ledgerutil.Refuse(ledgerutil.Conflict, "proposal %s by %s already records this config update", existing.ID, existing.Proposer)
}

// Sign records the calling admin's ConfigSignature over the proposal's update; one
// per org. configSignature is a base64 common.ConfigSignature made with the caller's
// own key and certificate.
func (c *Contract) Sign(ctx contractapi.TransactionContextInterface, id, configSignature string) (*Signature, error) {
	who, err := memberAdmin(ctx, "Sign")
	if err != nil {
		return nil, err
	}
	_, p, err := c.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if p.Status != StatusOpen {
		return nil, ledgerutil.Refuse(ledgerutil.WrongPhase, "proposal %s is %s; it takes signatures only while open", id, p.Status)
	}
	raw, err := base64.StdEncoding.DecodeString(configSignature)
	if err != nil {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "configSignature must be standard base64")
	}
	update, err := base64.StdEncoding.DecodeString(p.ConfigUpdate)
	if err != nil {
		return nil, ledgerutil.Refuse(ledgerutil.Internal, "proposal %s holds a corrupt config update", id)
	}
	cert, err := ctx.GetClientIdentity().GetX509Certificate()
	if err != nil {
		return nil, ledgerutil.Context(err, "reading the caller's certificate")
	}
	if err := verifyConfigSignature(raw, update, who.MSPID, cert); err != nil {
		return nil, err
	}
	return recordSignature(ctx, id, who, configSignature)
}

// recordSignature stores the org's one signature, refusing a second one.
func recordSignature(ctx contractapi.TransactionContextInterface, id string, who caller.Identity, configSignature string) (*Signature, error) {
	k, err := ctx.GetStub().CreateCompositeKey(signatureKeyType, []string{id, who.MSPID})
	if err != nil {
		return nil, ledgerutil.Context(err, "signature key")
	}
	var prior Signature
	if found, err := ledgerutil.GetJSON(ctx, k, &prior); err != nil || found {
		if err != nil {
			return nil, ledgerutil.Context(err, "reading the org's signature")
		}
		if prior.ConfigSignature == configSignature {
			return nil, ledgerutil.Refuse(ledgerutil.AlreadyDone, "%s's signature on proposal %s is already recorded", who.MSPID, id)
		}
		return nil, ledgerutil.Refuse(ledgerutil.Conflict, "%s already signed proposal %s (by %q); one signature per org", who.MSPID, id, prior.Subject)
	}
	s := &Signature{MSPID: who.MSPID, Subject: who.Subject, ConfigSignature: configSignature, TxID: ctx.GetStub().GetTxID()}
	if s.SignedAt, err = ledgerutil.TxTime(ctx); err != nil {
		return nil, ledgerutil.Context(err, "reading the transaction time")
	}
	rec, err := ledgerutil.PutJSON(ctx, k, s)
	if err != nil {
		return nil, ledgerutil.Context(err, "writing the signature")
	}
	return s, ctx.GetStub().SetEvent("ProposalSigned", rec)
}

// RecordOutcome records, for the calling admin's org, the config block in which the
// orderers applied the proposal's update; updateDigest is the SHA-256 of the
// ConfigUpdate found in that block. Differing reports mark the proposal disputed.
func (c *Contract) RecordOutcome(ctx contractapi.TransactionContextInterface, id string, blockNumber uint64, updateDigest string) (*Outcome, error) {
	who, err := memberAdmin(ctx, "RecordOutcome")
	if err != nil {
		return nil, err
	}
	pk, p, err := c.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := ledgerutil.CheckDigest("updateDigest", updateDigest); err != nil {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "%v", err)
	}
	if updateDigest != p.UpdateDigest {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "block %d applied update %s, not proposal %s's update %s", blockNumber, updateDigest, id, p.UpdateDigest)
	}
	if blockNumber == 0 {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "block 0 is the genesis block; a config update lands in a later block")
	}
	o := &Outcome{MSPID: who.MSPID, Subject: who.Subject, BlockNumber: blockNumber, UpdateDigest: updateDigest, TxID: ctx.GetStub().GetTxID()}
	if o.RecordedAt, err = ledgerutil.TxTime(ctx); err != nil {
		return nil, ledgerutil.Context(err, "reading the transaction time")
	}
	if err := c.addOutcome(ctx, p, o); err != nil {
		return nil, err
	}
	if err := markMembership(ctx, p); err != nil {
		return nil, err
	}
	return o, c.save(ctx, pk, p, "ProposalOutcome")
}

func (c *Contract) addOutcome(ctx contractapi.TransactionContextInterface, p *Proposal, o *Outcome) error {
	k, err := ctx.GetStub().CreateCompositeKey(outcomeKeyType, []string{p.ID, o.MSPID})
	if err != nil {
		return ledgerutil.Context(err, "outcome key")
	}
	var prior Outcome
	if found, err := ledgerutil.GetJSON(ctx, k, &prior); err != nil || found {
		if err != nil {
			return ledgerutil.Context(err, "reading the org's outcome")
		}
		if prior.BlockNumber == o.BlockNumber {
			return ledgerutil.Refuse(ledgerutil.AlreadyDone, "%s already recorded block %d for proposal %s", o.MSPID, o.BlockNumber, p.ID)
		}
		return ledgerutil.Refuse(ledgerutil.Conflict, "%s already recorded block %d for proposal %s", o.MSPID, prior.BlockNumber, p.ID)
	}
	outcomes, err := listUnder[Outcome](ctx, outcomeKeyType, p.ID)
	if err != nil {
		return err
	}
	p.Status = StatusApplied
	for _, other := range outcomes {
		if other.BlockNumber != o.BlockNumber {
			p.Status = StatusDisputed
		}
	}
	if _, err := ledgerutil.PutJSON(ctx, k, o); err != nil {
		return ledgerutil.Context(err, "writing the outcome")
	}
	return nil
}

// currentMembers are the orgs recorded by the Consortium contract, less those an
// applied remove-org proposal took out of the channel.
func currentMembers(ctx contractapi.TransactionContextInterface) ([]string, error) {
	recorded, err := consortium.MemberMSPIDs(ctx)
	if err != nil {
		return nil, err
	}
	current := []string{}
	for _, m := range recorded {
		k, err := ctx.GetStub().CreateCompositeKey(removedKeyType, []string{m})
		if err != nil {
			return nil, err
		}
		gone, err := ctx.GetStub().GetState(k)
		if err != nil {
			return nil, err
		}
		if gone == nil {
			current = append(current, m)
		}
	}
	return current, nil
}

// markMembership records what an applied membership proposal did to the member list.
func markMembership(ctx contractapi.TransactionContextInterface, p *Proposal) error {
	if p.Status != StatusApplied || (p.Kind != KindRemoveOrg && p.Kind != KindAddOrg) {
		return nil
	}
	k, err := ctx.GetStub().CreateCompositeKey(removedKeyType, []string{p.Subject})
	if err != nil {
		return ledgerutil.Context(err, "membership key")
	}
	if p.Kind == KindAddOrg {
		return ctx.GetStub().DelState(k)
	}
	return ctx.GetStub().PutState(k, []byte(p.ID))
}

// GetProposal returns one proposal with its update, signatures and outcomes.
func (c *Contract) GetProposal(ctx contractapi.TransactionContextInterface, id string) (*Proposal, error) {
	_, p, err := c.load(ctx, id)
	if err != nil {
		return nil, err
	}
	return p, c.attach(ctx, p)
}

// ListProposals returns every proposal with its signatures and outcomes, ordered by
// ID; the config update bytes are left out (GetProposal has them).
func (c *Contract) ListProposals(ctx contractapi.TransactionContextInterface) ([]*Proposal, error) {
	all, err := listUnder[Proposal](ctx, proposalKeyType, "")
	if err != nil {
		return nil, err
	}
	out := make([]*Proposal, len(all))
	for i := range all {
		p := &all[i]
		p.ConfigUpdate = ""
		if err := c.attach(ctx, p); err != nil {
			return nil, err
		}
		out[i] = p
	}
	return out, nil
}

func (c *Contract) attach(ctx contractapi.TransactionContextInterface, p *Proposal) error {
	var err error
	if p.Signatures, err = listUnder[Signature](ctx, signatureKeyType, p.ID); err != nil {
		return err
	}
	p.Outcomes, err = listUnder[Outcome](ctx, outcomeKeyType, p.ID)
	return err
}

func (c *Contract) load(ctx contractapi.TransactionContextInterface, id string) (string, *Proposal, error) {
	if !idPattern.MatchString(id) {
		return "", nil, ledgerutil.Refuse(ledgerutil.Invalid, "proposal id %q is invalid; it is %d lowercase hex characters", id, idHexLength)
	}
	k, err := ctx.GetStub().CreateCompositeKey(proposalKeyType, []string{id})
	if err != nil {
		return "", nil, ledgerutil.Context(err, "proposal key")
	}
	var p Proposal
	found, err := ledgerutil.GetJSON(ctx, k, &p)
	if err != nil {
		return k, nil, ledgerutil.Context(err, "reading proposal "+id)
	}
	if !found {
		return k, nil, ledgerutil.Refuse(ledgerutil.NotFound, "no proposal %q", id)
	}
	return k, &p, nil
}

// save stores the proposal record (signatures and outcomes live under their own keys,
// so that orgs signing in the same block do not conflict) and emits its event.
func (c *Contract) save(ctx contractapi.TransactionContextInterface, k string, p *Proposal, event string) error {
	stored := *p
	stored.Signatures, stored.Outcomes = []Signature{}, []Outcome{}
	if _, err := ledgerutil.PutJSON(ctx, k, &stored); err != nil {
		return ledgerutil.Context(err, "writing the proposal")
	}
	stored.ConfigUpdate = ""
	payload, err := json.Marshal(&stored)
	if err != nil {
		return ledgerutil.Context(err, "encoding the event")
	}
	return ctx.GetStub().SetEvent(event, payload)
}

// listUnder reads every record under a key type (and proposal ID), in key order.
func listUnder[T any](ctx contractapi.TransactionContextInterface, keyType, id string) ([]T, error) {
	attrs := []string{}
	if id != "" {
		attrs = append(attrs, id)
	}
	return ledgerutil.ListRecords[T](ctx, keyType, attrs, "listing "+keyType)
}
