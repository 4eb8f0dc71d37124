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
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
	"github.com/fabricml/fabricml/chaincode/registry"
)

const (
	serviceKeyType  = "attestservice"
	batchKeyType    = "attestbatch"
	claimKeyType    = "claim"
	claimVoteType   = "claimvote"
	payoutKeyType   = "payout"
	receiptUseType  = "claimreceipt"
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

// Claim is a decision that needs k organizations to agree. Its ID is
// "<opener MSP ID>:<id>": each org names its own claims, so none can take another's id.
type Claim struct {
	ID             string   `json:"id"`
	InputDigest    string   `json:"inputDigest"`
	ModelName      string   `json:"modelName"`
	K              int      `json:"k"`
	Amount         string   `json:"amount"`
	OpenedBy       string   `json:"openedBy"`
	OpenedTxID     string   `json:"openedTxId"`
	Status         string   `json:"status"`
	AcceptedOutput string   `json:"acceptedOutput"`
	AgreeingOrgs   []string `json:"agreeingOrgs"`
	// Answers counts the attestations; every one rewrites the claim, so two answers in
	// one block conflict (one is retried) and no tally misses a vote it did not see.
	Answers int `json:"answers"`
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
func New() *Contract { return &Contract{Contract: contractapi.Contract{Name: "Attestation"}} }

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
	who, err := caller.WithRole(ctx, "inference", "AnchorBatch")
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
	if slices.Contains(d.SuspendedBy, svc.MSPID) {
		return nil, ledgerutil.Refuse(ledgerutil.Conflict, "%s suspended its use of %s; its services cannot anchor receipts of it", svc.MSPID, req.Model)
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
	if err := ledgerutil.GetExisting(ctx, k, &b, "service %s/%s anchored no batch %d", mspID, subject, sequence); err != nil {
		return nil, err
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

// included checks that receipt r is in batch seq of its service: the batch's model,
// within its receipt range, at its own position, on a path to the anchored root.
func (c *Contract) included(ctx contractapi.TransactionContextInterface, r *Receipt, seq uint64, proof string) (*InclusionResult, error) {
	b, err := c.GetBatch(ctx, r.Service.MSPID, r.Service.Subject, seq)
	if err != nil {
		return nil, err
	}
	if r.Model != b.Model {
		return nil, ledgerutil.Refuse(ledgerutil.Conflict, "the receipt is for model %s, batch %d of %s/%s anchors receipts of %s",
			r.Model, seq, b.Service.MSPID, b.Service.Subject, b.Model)
	}
	if r.Sequence < b.FirstReceipt || r.Sequence > b.LastReceipt {
		return nil, ledgerutil.Refuse(ledgerutil.Conflict, "receipt %d is not in batch %d of %s/%s, which holds receipts %d to %d",
			r.Sequence, seq, b.Service.MSPID, b.Service.Subject, b.FirstReceipt, b.LastReceipt)
	}
	p, path, err := decodeProof(proof)
	if err != nil {
		return nil, err
	}
	out := &InclusionResult{Included: false, Root: b.Root, TxID: b.TxID}
	if p.Size != b.Count || p.Index != r.Sequence-b.FirstReceipt {
		return out, nil // the proof is not for this receipt's place in this batch
	}
	leaf, err := r.leaf()
	if err != nil {
		return nil, ledgerutil.Context(err, "hashing the receipt")
	}
	root, err := rootFromProof(leaf, p.Index, p.Size, path)
	if err != nil {
		return out, nil
	}
	out.Included = hex.EncodeToString(root) == b.Root
	return out, nil
}

// VerifyInclusion checks that a receipt is in the batch its service anchored: the
// batch's model and receipt range, at the receipt's own position. The signature is
// checked off-chain against the service's certificate (fabricml attest verify).
func (c *Contract) VerifyInclusion(ctx contractapi.TransactionContextInterface, receipt string, sequence uint64, proof string) (*InclusionResult, error) {
	r, err := decodeReceipt(receipt)
	if err != nil {
		return nil, err
	}
	return c.included(ctx, r, sequence, proof)
}

func decodeReceipt(raw string) (*Receipt, error) {
	if len(raw) > maxRequestBytes {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "receipt is larger than %d bytes", maxRequestBytes)
	}
	var r Receipt
	if err := ledgerutil.DecodeStrict([]byte(raw), "receipt", &r); err != nil {
		return nil, err
	}
	return &r, r.validate()
}
