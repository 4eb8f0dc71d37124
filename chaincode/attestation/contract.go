// Package attestation anchors Merkle roots of signed inference receipts, verifies
// inclusion proofs, and accepts a decision (a claim) only when k organizations'
// independent services attested the same output for the same input.
package attestation

import (
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/fabricml/fabricml/chaincode/caller"
	"github.com/fabricml/fabricml/chaincode/consortium"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
	"github.com/fabricml/fabricml/chaincode/registry"
)

const (
	serviceKeyType  = "attestservice"
	batchKeyType    = "attestbatch"
	claimKeyType    = "claim"
	claimVoteType   = "claimvote"
	payoutKeyType   = "payout"
	maxBatchCount   = 1_000_000
	maxRequestBytes = 16384
)

var checkDigest = ledgerutil.CheckDigest

// ServiceState is where an inference service's batch sequence stands.
type ServiceState struct {
	Service      ServiceID `json:"service"`
	LastSequence uint64    `json:"lastSequence"`
	LastReceipt  uint64    `json:"lastReceipt"`
}

// BatchRequest is what a service anchors: the root over receipts first..last.
type BatchRequest struct {
	Sequence     uint64 `json:"sequence"`
	Model        string `json:"model"`
	Root         string `json:"root"`
	Count        uint64 `json:"count"`
	FirstReceipt uint64 `json:"firstReceipt"`
	LastReceipt  uint64 `json:"lastReceipt"`
}

// Batch is an anchored batch of receipts.
type Batch struct {
	BatchRequest
	Service    ServiceID `json:"service"`
	AnchoredAt string    `json:"anchoredAt"`
	TxID       string    `json:"txId"`
}

// Claim is a decision that needs k organizations to agree.
type Claim struct {
	ID             string   `json:"id"`
	InputDigest    string   `json:"inputDigest"`
	ModelName      string   `json:"modelName"`
	K              int      `json:"k"`
	OpenedBy       string   `json:"openedBy"`
	OpenedTxID     string   `json:"openedTxId"`
	Status         string   `json:"status"`
	AcceptedOutput string   `json:"acceptedOutput"`
	AgreeingOrgs   []string `json:"agreeingOrgs"`
}

// ClaimAttestation is one org's service's answer to a claim, proven on-chain.
type ClaimAttestation struct {
	ClaimID      string    `json:"claimId"`
	Service      ServiceID `json:"service"`
	OutputDigest string    `json:"outputDigest"`
	Model        string    `json:"model"`
	Batch        uint64    `json:"batch"`
	At           string    `json:"at"`
	TxID         string    `json:"txId"`
}

// Payout is executed only for an accepted claim, once.
type Payout struct {
	ClaimID      string `json:"claimId"`
	Amount       string `json:"amount"`
	OutputDigest string `json:"outputDigest"`
	ExecutedBy   string `json:"executedBy"`
	At           string `json:"at"`
	TxID         string `json:"txId"`
}

// InclusionResult says whether a leaf is in an anchored batch.
type InclusionResult struct {
	Included bool   `json:"included"`
	Root     string `json:"root"`
	TxID     string `json:"txId"`
}

// Proof is an RFC 6962 inclusion proof.
type Proof struct {
	Index uint64   `json:"index"`
	Size  uint64   `json:"size"`
	Path  []string `json:"path"`
}

// Contract is the Attestation contract.
type Contract struct {
	contractapi.Contract
}

// New returns the contract under its public name.
func New() *Contract {
	c := &Contract{}
	c.Name = "Attestation"
	return c
}

func requireInference(ctx contractapi.TransactionContextInterface, action string) (caller.Identity, error) {
	who, err := caller.Of(ctx)
	if err != nil {
		return who, err
	}
	return who, who.RequireRole("inference", action)
}

func key(ctx contractapi.TransactionContextInterface, kind string, parts ...string) (string, error) {
	return ledgerutil.Key(ctx, kind, parts...)
}

func batchKey(ctx contractapi.TransactionContextInterface, s ServiceID, seq uint64) (string, error) {
	return key(ctx, batchKeyType, s.MSPID, s.Subject, fmt.Sprintf("%020d", seq))
}

// AnchorBatch records a batch root for the calling inference service. Sequences must
// follow each other with no gap or replay, receipts too, and the model must be
// approved and not revoked at this transaction's time. Sending an anchored batch again
// (same sequence, same content) returns it unchanged, so a retry after a lost commit
// status does not stall the service; other content under an anchored sequence is a
// CONFLICT.
func (c *Contract) AnchorBatch(ctx contractapi.TransactionContextInterface, request string) (*Batch, error) {
	who, err := requireInference(ctx, "AnchorBatch")
	if err != nil {
		return nil, err
	}
	req, err := decodeBatch(request)
	if err != nil {
		return nil, err
	}
	svc := ServiceID{MSPID: who.MSPID, Subject: who.Subject}
	stateKey, err := key(ctx, serviceKeyType, svc.MSPID, svc.Subject)
	if err != nil {
		return nil, err
	}
	state := ServiceState{Service: svc}
	if _, err := ledgerutil.GetJSON(ctx, stateKey, &state); err != nil {
		return nil, err
	}
	if req.Sequence >= 1 && req.Sequence <= state.LastSequence {
		if prior, err := c.GetBatch(ctx, svc.MSPID, svc.Subject, req.Sequence); err == nil && prior.BatchRequest == *req {
			return prior, nil
		}
	}
	if err := checkNext(state, req); err != nil {
		return nil, err
	}
	d, err := registry.New().Deployable(ctx, req.Model)
	if err != nil {
		return nil, err
	}
	if !d.Deployable {
		return nil, ledgerutil.Refuse(ledgerutil.Conflict, "model %s is %s, not approved for serving; its receipts cannot be anchored", req.Model, d.Status)
	}
	now, err := ledgerutil.TxTime(ctx)
	if err != nil {
		return nil, err
	}
	b := &Batch{BatchRequest: *req, Service: svc, AnchoredAt: now, TxID: ctx.GetStub().GetTxID()}
	bk, err := batchKey(ctx, svc, req.Sequence)
	if err != nil {
		return nil, err
	}
	raw, err := ledgerutil.PutJSON(ctx, bk, b)
	if err != nil {
		return nil, err
	}
	state.LastSequence, state.LastReceipt = req.Sequence, req.LastReceipt
	if _, err := ledgerutil.PutJSON(ctx, stateKey, state); err != nil {
		return nil, err
	}
	return b, ctx.GetStub().SetEvent("BatchAnchored", raw)
}

func decodeBatch(request string) (*BatchRequest, error) {
	if len(request) > maxRequestBytes {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "batch request is larger than %d bytes", maxRequestBytes)
	}
	var req BatchRequest
	if err := ledgerutil.DecodeStrict([]byte(request), "batch", &req); err != nil {
		return nil, err
	}
	if err := checkDigest("root", req.Root); err != nil {
		return nil, err
	}
	if req.Count == 0 || req.Count > maxBatchCount || req.LastReceipt < req.FirstReceipt || req.LastReceipt-req.FirstReceipt+1 != req.Count {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "batch must cover count=%d consecutive receipts, got first=%d last=%d", req.Count, req.FirstReceipt, req.LastReceipt)
	}
	return &req, nil
}

// checkNext: the batch continues the service's sequence and receipts with no gap or replay.
func checkNext(state ServiceState, req *BatchRequest) error {
	if req.Sequence != state.LastSequence+1 {
		return ledgerutil.Refuse(ledgerutil.Conflict, "batch sequence %d is out of order: service %s/%s anchored %d last, so %d is next (no gaps or replays)",
			req.Sequence, state.Service.MSPID, state.Service.Subject, state.LastSequence, state.LastSequence+1)
	}
	if req.FirstReceipt != state.LastReceipt+1 {
		return ledgerutil.Refuse(ledgerutil.Conflict, "batch starts at receipt %d but receipt %d is next", req.FirstReceipt, state.LastReceipt+1)
	}
	return nil
}

// GetService returns a service's last anchored sequence and receipt.
func (c *Contract) GetService(ctx contractapi.TransactionContextInterface, mspID, subject string) (*ServiceState, error) {
	k, err := key(ctx, serviceKeyType, mspID, subject)
	if err != nil {
		return nil, err
	}
	state := &ServiceState{Service: ServiceID{MSPID: mspID, Subject: subject}}
	if _, err := ledgerutil.GetJSON(ctx, k, state); err != nil {
		return nil, err
	}
	return state, nil
}

// GetBatch returns one anchored batch.
func (c *Contract) GetBatch(ctx contractapi.TransactionContextInterface, mspID, subject string, sequence uint64) (*Batch, error) {
	k, err := batchKey(ctx, ServiceID{mspID, subject}, sequence)
	if err != nil {
		return nil, err
	}
	var b Batch
	found, err := ledgerutil.GetJSON(ctx, k, &b)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, ledgerutil.Refuse(ledgerutil.NotFound, "service %s/%s anchored no batch %d", mspID, subject, sequence)
	}
	return &b, nil
}

func decodeProof(raw string) (*Proof, [][]byte, error) {
	var p Proof
	if err := ledgerutil.DecodeStrict([]byte(raw), "inclusion proof", &p); err != nil {
		return nil, nil, err
	}
	if len(p.Path) > 64 {
		return nil, nil, ledgerutil.Refuse(ledgerutil.Invalid, "inclusion proof path is longer than 64")
	}
	path := make([][]byte, len(p.Path))
	for i, h := range p.Path {
		if err := checkDigest(fmt.Sprintf("proof path[%d]", i), h); err != nil {
			return nil, nil, err
		}
		path[i], _ = hex.DecodeString(h)
	}
	return &p, path, nil
}

func (c *Contract) included(ctx contractapi.TransactionContextInterface, svc ServiceID, seq uint64, leaf []byte, proof string) (*InclusionResult, error) {
	b, err := c.GetBatch(ctx, svc.MSPID, svc.Subject, seq)
	if err != nil {
		return nil, err
	}
	p, path, err := decodeProof(proof)
	if err != nil {
		return nil, err
	}
	if p.Size != b.Count {
		return &InclusionResult{Included: false, Root: b.Root, TxID: b.TxID}, nil
	}
	r, err := rootFromProof(leaf, p.Index, p.Size, path)
	if err != nil {
		return &InclusionResult{Included: false, Root: b.Root, TxID: b.TxID}, nil
	}
	return &InclusionResult{Included: hex.EncodeToString(r) == b.Root, Root: b.Root, TxID: b.TxID}, nil
}

// VerifyInclusion checks that a signed receipt is in the batch its service anchored.
func (c *Contract) VerifyInclusion(ctx contractapi.TransactionContextInterface, receipt string, sequence uint64, proof string) (*InclusionResult, error) {
	var r Receipt
	if err := ledgerutil.DecodeStrict([]byte(receipt), "receipt", &r); err != nil {
		return nil, err
	}
	leaf, err := r.leaf()
	if err != nil {
		return nil, ledgerutil.Context(err, "hashing the receipt")
	}
	return c.included(ctx, r.Service, sequence, leaf, proof)
}

// OpenClaim registers a decision that needs k member organizations to agree on.
func (c *Contract) OpenClaim(ctx contractapi.TransactionContextInterface, id, inputDigest, modelName string, k int) (*Claim, error) {
	who, err := caller.Of(ctx)
	if err != nil {
		return nil, err
	}
	if err := who.RequireAdmin("OpenClaim"); err != nil {
		return nil, err
	}
	if err := ledgerutil.Check("claim id", id, ledgerutil.LedgerIDPattern); err != nil {
		return nil, err
	}
	if err := checkDigest("inputDigest", inputDigest); err != nil {
		return nil, err
	}
	members, err := consortium.MemberMSPIDs(ctx)
	if err != nil {
		return nil, err
	}
	if k < 1 || k > len(members) {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "k must be 1 to %d (the consortium's members), got %d", len(members), k)
	}
	ck, err := key(ctx, claimKeyType, id)
	if err != nil {
		return nil, err
	}
	var existing Claim
	if found, err := ledgerutil.GetJSON(ctx, ck, &existing); err != nil || found {
		if err == nil {
			err = ledgerutil.Refuse(ledgerutil.Conflict, "claim %s already exists (opened by %s in transaction %s)", id, existing.OpenedBy, existing.OpenedTxID)
		}
		return nil, err
	}
	cl := &Claim{ID: id, InputDigest: inputDigest, ModelName: modelName, K: k, OpenedBy: who.MSPID,
		OpenedTxID: ctx.GetStub().GetTxID(), Status: "open", AgreeingOrgs: []string{}}
	raw, err := ledgerutil.PutJSON(ctx, ck, cl)
	if err != nil {
		return nil, err
	}
	return cl, ctx.GetStub().SetEvent("ClaimOpened", raw)
}

// AttestClaim records the calling service's answer to a claim. The receipt must be the
// caller's own (its signature verifies with the caller's certificate), for the claim's
// input, from an approved version of the claim's model, and included in a batch the
// caller anchored. The claim is accepted when k orgs gave the same output.
func (c *Contract) AttestClaim(ctx contractapi.TransactionContextInterface, id, receipt string, sequence uint64, proof string) (*Claim, error) {
	who, err := requireInference(ctx, "AttestClaim")
	if err != nil {
		return nil, err
	}
	cl, ck, err := c.loadClaim(ctx, id)
	if err != nil {
		return nil, err
	}
	if cl.Status != "open" {
		return nil, ledgerutil.Refuse(ledgerutil.WrongPhase, "claim %s is %s", id, cl.Status)
	}
	svc := ServiceID{MSPID: who.MSPID, Subject: who.Subject}
	r, err := c.provenReceipt(ctx, cl, svc, receipt, sequence, proof)
	if err != nil {
		return nil, err
	}
	voteKey, err := key(ctx, claimVoteType, id, who.MSPID)
	if err != nil {
		return nil, err
	}
	var prior ClaimAttestation
	if found, err := ledgerutil.GetJSON(ctx, voteKey, &prior); err != nil || found {
		if err == nil {
			err = ledgerutil.Refuse(ledgerutil.AlreadyDone, "%s already attested claim %s (transaction %s)", who.MSPID, id, prior.TxID)
		}
		return nil, err
	}
	now, err := ledgerutil.TxTime(ctx)
	if err != nil {
		return nil, err
	}
	vote := ClaimAttestation{ClaimID: id, Service: svc, OutputDigest: r.OutputDigest, Model: r.Model, Batch: sequence, At: now, TxID: ctx.GetStub().GetTxID()}
	if _, err := ledgerutil.PutJSON(ctx, voteKey, vote); err != nil {
		return nil, err
	}
	return c.tally(ctx, cl, ck, vote)
}

// provenReceipt decodes the receipt and checks it is the caller's, for the claim, and
// included in the caller's anchored batch `sequence`.
func (c *Contract) provenReceipt(ctx contractapi.TransactionContextInterface, cl *Claim, svc ServiceID, receipt string, sequence uint64, proof string) (*Receipt, error) {
	var r Receipt
	if err := ledgerutil.DecodeStrict([]byte(receipt), "receipt", &r); err != nil {
		return nil, err
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	if r.Service != svc {
		return nil, ledgerutil.Refuse(ledgerutil.Forbidden, "the receipt belongs to service %s/%s, not to the caller %s/%s", r.Service.MSPID, r.Service.Subject, svc.MSPID, svc.Subject)
	}
	cert, err := ctx.GetClientIdentity().GetX509Certificate()
	if err != nil {
		return nil, ledgerutil.Context(err, "reading the caller's certificate")
	}
	if err := r.verifySignature(cert); err != nil {
		return nil, err
	}
	if r.InputDigest != cl.InputDigest {
		return nil, ledgerutil.Refuse(ledgerutil.Conflict, "the receipt is for input %s, the claim for %s", r.InputDigest, cl.InputDigest)
	}
	if name, _, err := registry.SplitRef(r.Model); err != nil || name != cl.ModelName {
		return nil, ledgerutil.Refuse(ledgerutil.Conflict, "the receipt's model %s is not a version of %s", r.Model, cl.ModelName)
	}
	leaf, err := r.leaf()
	if err != nil {
		return nil, ledgerutil.Context(err, "hashing the receipt")
	}
	inc, err := c.included(ctx, svc, sequence, leaf, proof)
	if err != nil {
		return nil, err
	}
	if !inc.Included {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "the receipt is not in batch %d of %s/%s (root %s)", sequence, svc.MSPID, svc.Subject, inc.Root)
	}
	return &r, nil
}

// tally accepts the claim once k orgs, the caller's new vote included, gave the same output.
func (c *Contract) tally(ctx contractapi.TransactionContextInterface, cl *Claim, ck string, vote ClaimAttestation) (*Claim, error) {
	agreeing := []string{vote.Service.MSPID}
	votes, err := c.ClaimAttestations(ctx, cl.ID)
	if err != nil {
		return nil, err
	}
	for _, v := range votes { // committed votes only: a transaction does not read its own writes
		if v.Service.MSPID != vote.Service.MSPID && v.OutputDigest == vote.OutputDigest {
			agreeing = append(agreeing, v.Service.MSPID)
		}
	}
	slices.Sort(agreeing)
	if len(agreeing) < cl.K {
		return cl, nil
	}
	cl.Status, cl.AcceptedOutput, cl.AgreeingOrgs = "accepted", vote.OutputDigest, agreeing
	raw, err := ledgerutil.PutJSON(ctx, ck, cl)
	if err != nil {
		return nil, err
	}
	return cl, ctx.GetStub().SetEvent("ClaimAccepted", raw)
}

// ClaimAttestations lists every org's answer to a claim, by MSP ID.
func (c *Contract) ClaimAttestations(ctx contractapi.TransactionContextInterface, id string) ([]*ClaimAttestation, error) {
	iter, err := ctx.GetStub().GetStateByPartialCompositeKey(claimVoteType, []string{id})
	if err != nil {
		return nil, ledgerutil.Context(err, "listing attestations of claim "+id)
	}
	defer iter.Close()
	out := []*ClaimAttestation{}
	for iter.HasNext() {
		kv, err := iter.Next()
		if err != nil {
			return nil, ledgerutil.Context(err, "listing attestations of claim "+id)
		}
		var v ClaimAttestation
		if err := ledgerutil.DecodeRecord(kv.Key, kv.Value, &v); err != nil {
			return nil, err
		}
		out = append(out, &v)
	}
	return out, nil
}

// GetClaim returns a claim.
func (c *Contract) GetClaim(ctx contractapi.TransactionContextInterface, id string) (*Claim, error) {
	cl, _, err := c.loadClaim(ctx, id)
	return cl, err
}

func (c *Contract) loadClaim(ctx contractapi.TransactionContextInterface, id string) (*Claim, string, error) {
	ck, err := key(ctx, claimKeyType, id)
	if err != nil {
		return nil, "", err
	}
	var cl Claim
	found, err := ledgerutil.GetJSON(ctx, ck, &cl)
	if err != nil {
		return nil, "", err
	}
	if !found {
		return nil, "", ledgerutil.Refuse(ledgerutil.NotFound, "no claim %q", id)
	}
	return &cl, ck, nil
}

// ExecutePayout records the payout of an accepted claim, once; org admins only.
func (c *Contract) ExecutePayout(ctx contractapi.TransactionContextInterface, id, amount string) (*Payout, error) {
	who, err := caller.Of(ctx)
	if err != nil {
		return nil, err
	}
	if err := who.RequireAdmin("ExecutePayout"); err != nil {
		return nil, err
	}
	if err := ledgerutil.Check("amount", amount, ledgerutil.AmountPattern); err != nil {
		return nil, err
	}
	cl, _, err := c.loadClaim(ctx, id)
	if err != nil {
		return nil, err
	}
	if cl.Status != "accepted" {
		return nil, ledgerutil.Refuse(ledgerutil.WrongPhase, "claim %s is %s: %d of %d organizations have not yet attested the same decision", id, cl.Status, len(cl.AgreeingOrgs), cl.K)
	}
	pk, err := key(ctx, payoutKeyType, id)
	if err != nil {
		return nil, err
	}
	var prior Payout
	if found, err := ledgerutil.GetJSON(ctx, pk, &prior); err != nil || found {
		if err == nil {
			err = ledgerutil.Refuse(ledgerutil.AlreadyDone, "claim %s was already paid out (transaction %s)", id, prior.TxID)
		}
		return nil, err
	}
	now, err := ledgerutil.TxTime(ctx)
	if err != nil {
		return nil, err
	}
	p := &Payout{ClaimID: id, Amount: amount, OutputDigest: cl.AcceptedOutput, ExecutedBy: who.MSPID, At: now, TxID: ctx.GetStub().GetTxID()}
	raw, err := ledgerutil.PutJSON(ctx, pk, p)
	if err != nil {
		return nil, err
	}
	return p, ctx.GetStub().SetEvent("PayoutExecuted", raw)
}
