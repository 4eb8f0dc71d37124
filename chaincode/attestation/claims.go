package attestation

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hyperledger/fabric-contract-api-go/v2/contractapi"

	"github.com/fabricml/fabricml/chaincode/caller"
	"github.com/fabricml/fabricml/chaincode/consortium"
	"github.com/fabricml/fabricml/chaincode/ledgerutil"
	"github.com/fabricml/fabricml/chaincode/registry"
)

// minClaimOrgs: a claim needs services of at least two orgs, so no org settles its own.
const minClaimOrgs = 2

// ReceiptUse records the claim a receipt answered: a receipt counts once.
type ReceiptUse struct {
	Claim string `json:"claim"`
	TxID  string `json:"txId"`
}

// splitClaimID parses "<opener MSP ID>:<id>".
func splitClaimID(ref string) (string, string, error) {
	opener, id, ok := strings.Cut(ref, ":")
	if !ok || !ledgerutil.Matches(opener, ledgerutil.LedgerIDPattern) || !ledgerutil.Matches(id, ledgerutil.LedgerIDPattern) {
		return "", "", ledgerutil.Refuse(ledgerutil.Invalid, "claim %q must be named <opener MSP ID>:<claim id>, e.g. Org1MSP:claim-42", ref)
	}
	return opener, id, nil
}

// member is the caller, if its org is a consortium member.
func member(ctx contractapi.TransactionContextInterface, who caller.Identity) ([]string, error) {
	members, err := consortium.MemberMSPIDs(ctx)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(members, who.MSPID) {
		return nil, ledgerutil.Refuse(ledgerutil.Forbidden, "%s is not a consortium member", who.MSPID)
	}
	return members, nil
}

// OpenClaim registers a decision that k member organizations (2 or more) must agree on,
// and the amount its payout will be. The claim is the caller org's: "<MSP ID>:<id>".
// Opening the same claim again is ALREADY_DONE; other terms under its id are a CONFLICT.
func (c *Contract) OpenClaim(ctx contractapi.TransactionContextInterface, id, inputDigest, modelName string, k int, amount string) (*Claim, error) {
	who, err := caller.Admin(ctx, "OpenClaim")
	if err != nil {
		return nil, err
	}
	members, err := member(ctx, who)
	if err != nil {
		return nil, err
	}
	cl := &Claim{ID: who.MSPID + ":" + id, InputDigest: inputDigest, ModelName: modelName, K: k, Amount: amount, OpenedBy: who.MSPID,
		OpenedTxID: ctx.GetStub().GetTxID(), Status: "open", AgreeingOrgs: []string{}}
	if err := cl.validate(len(members)); err != nil {
		return nil, err
	}
	ck, err := claimKey(ctx, cl.ID)
	if err != nil {
		return nil, err
	}
	var existing Claim
	if found, err := ledgerutil.GetJSON(ctx, ck, &existing); err != nil || found {
		if err == nil {
			err = existingClaim(&existing, cl)
		}
		return nil, err
	}
	return cl, ledgerutil.PutJSONWithEvent(ctx, ck, cl, "ClaimOpened")
}

func (cl *Claim) validate(members int) error {
	_, id, _ := strings.Cut(cl.ID, ":")
	if err := ledgerutil.Check("claim id", id, ledgerutil.LedgerIDPattern); err != nil {
		return err
	}
	if err := checkDigest("inputDigest", cl.InputDigest); err != nil {
		return err
	}
	if err := ledgerutil.Check("model name", cl.ModelName, ledgerutil.ModelNamePattern); err != nil {
		return err
	}
	if members < minClaimOrgs {
		return ledgerutil.Refuse(ledgerutil.Conflict, "a claim needs services of %d organizations; the consortium has %d member", minClaimOrgs, members)
	}
	if cl.K < minClaimOrgs || cl.K > members {
		return ledgerutil.Refuse(ledgerutil.Invalid, "k must be %d to %d (no org settles a claim alone; at most the consortium's members), got %d", minClaimOrgs, members, cl.K)
	}
	return ledgerutil.Check("amount", cl.Amount, ledgerutil.AmountPattern)
}

func existingClaim(existing, cl *Claim) error {
	if existing.InputDigest == cl.InputDigest && existing.ModelName == cl.ModelName && existing.K == cl.K && existing.Amount == cl.Amount {
		return ledgerutil.Refuse(ledgerutil.AlreadyDone, "claim %s is already open with these terms (transaction %s)", cl.ID, existing.OpenedTxID)
	}
	return ledgerutil.Refuse(ledgerutil.Conflict, "claim %s already exists with other terms (transaction %s)", cl.ID, existing.OpenedTxID)
}

func claimKey(ctx contractapi.TransactionContextInterface, ref string) (string, error) {
	opener, id, err := splitClaimID(ref)
	if err != nil {
		return "", err
	}
	return key(ctx, claimKeyType, opener, id)
}

// AttestClaim records the calling service's answer to a claim. The receipt must be the
// caller's own (its signature verifies with the caller's certificate), for the claim's
// input, from a version of the claim's model that is deployable and not suspended by
// the caller's org, included in a batch the caller anchored, and not used for any other
// claim. One answer per org; the claim is accepted when k orgs gave the same output.
func (c *Contract) AttestClaim(ctx contractapi.TransactionContextInterface, claim, receipt string, sequence uint64, proof string) (*Claim, error) {
	who, err := caller.WithRole(ctx, "inference", "AttestClaim")
	if err != nil {
		return nil, err
	}
	if _, err := member(ctx, who); err != nil {
		return nil, err
	}
	cl, ck, err := c.loadClaim(ctx, claim)
	if err != nil {
		return nil, err
	}
	if cl.Status != "open" {
		return nil, ledgerutil.Refuse(ledgerutil.WrongPhase, "claim %s is %s", claim, cl.Status)
	}
	svc := ServiceID{MSPID: who.MSPID, Subject: who.Subject}
	r, err := c.provenReceipt(ctx, cl, svc, receipt, sequence, proof)
	if err != nil {
		return nil, err
	}
	voteKey, useKey, err := c.unusedReceipt(ctx, cl, r)
	if err != nil {
		return nil, err
	}
	now, err := ledgerutil.TxTime(ctx)
	if err != nil {
		return nil, err
	}
	txID := ctx.GetStub().GetTxID()
	vote := ClaimAttestation{ClaimID: cl.ID, Service: svc, OutputDigest: r.OutputDigest, Model: r.Model, Batch: sequence, At: now, TxID: txID}
	if _, err := ledgerutil.PutJSON(ctx, voteKey, vote); err != nil {
		return nil, err
	}
	if _, err := ledgerutil.PutJSON(ctx, useKey, ReceiptUse{Claim: cl.ID, TxID: txID}); err != nil {
		return nil, err
	}
	return c.tally(ctx, cl, ck, vote)
}

// unusedReceipt: the receipt's org has not answered this claim, and the receipt has
// answered no claim; it returns the keys the answer is written under.
func (c *Contract) unusedReceipt(ctx contractapi.TransactionContextInterface, cl *Claim, r *Receipt) (string, string, error) {
	opener, id, _ := splitClaimID(cl.ID)
	voteKey, err := key(ctx, claimVoteType, opener, id, r.Service.MSPID)
	if err != nil {
		return "", "", err
	}
	var prior ClaimAttestation
	if found, err := ledgerutil.GetJSON(ctx, voteKey, &prior); err != nil || found {
		if err == nil {
			err = ledgerutil.Refuse(ledgerutil.AlreadyDone, "%s already attested claim %s (transaction %s)", r.Service.MSPID, cl.ID, prior.TxID)
		}
		return "", "", err
	}
	useKey, err := key(ctx, receiptUseType, r.Service.MSPID, r.Service.Subject, fmt.Sprintf("%020d", r.Sequence))
	if err != nil {
		return "", "", err
	}
	var used ReceiptUse
	if found, err := ledgerutil.GetJSON(ctx, useKey, &used); err != nil || found {
		if err == nil {
			err = ledgerutil.Refuse(ledgerutil.Conflict, "receipt %d of %s/%s already answered claim %s (transaction %s); a receipt counts once",
				r.Sequence, r.Service.MSPID, r.Service.Subject, used.Claim, used.TxID)
		}
		return "", "", err
	}
	return voteKey, useKey, nil
}

// provenReceipt decodes the receipt and checks it is the caller's, for the claim, of a
// version the caller's org may serve now, and included in the caller's batch `sequence`.
func (c *Contract) provenReceipt(ctx contractapi.TransactionContextInterface, cl *Claim, svc ServiceID, receipt string, sequence uint64, proof string) (*Receipt, error) {
	r, err := decodeReceipt(receipt)
	if err != nil {
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
	if err := servable(ctx, r.Model, svc.MSPID); err != nil {
		return nil, err
	}
	inc, err := c.included(ctx, r, sequence, proof)
	if err != nil {
		return nil, err
	}
	if !inc.Included {
		return nil, ledgerutil.Refuse(ledgerutil.Invalid, "the receipt is not in batch %d of %s/%s (root %s)", sequence, svc.MSPID, svc.Subject, inc.Root)
	}
	return r, nil
}

// servable: the version is approved and not withdrawn now, and msp has not suspended it.
func servable(ctx contractapi.TransactionContextInterface, ref, msp string) error {
	d, err := registry.New().Deployable(ctx, ref)
	if err != nil {
		return err
	}
	if !d.Deployable {
		return ledgerutil.Refuse(ledgerutil.Conflict, "model %s is %s, not approved for serving; its answers do not count", ref, d.Status)
	}
	if slices.Contains(d.SuspendedBy, msp) {
		return ledgerutil.Refuse(ledgerutil.Conflict, "%s suspended its use of %s; its services' answers do not count", msp, ref)
	}
	return nil
}

// tally counts the answer and accepts the claim once k orgs, the caller's new vote
// included, gave the same output.
func (c *Contract) tally(ctx contractapi.TransactionContextInterface, cl *Claim, ck string, vote ClaimAttestation) (*Claim, error) {
	agreeing := []string{vote.Service.MSPID}
	votes, err := c.ClaimAttestations(ctx, cl.ID)
	if err != nil {
		return nil, err
	}
	for _, v := range votes { // committed votes only: a transaction does not read its own writes
		if v.Service.MSPID != vote.Service.MSPID && v.OutputDigest == vote.OutputDigest && !slices.Contains(agreeing, v.Service.MSPID) {
			agreeing = append(agreeing, v.Service.MSPID)
		}
	}
	slices.Sort(agreeing)
	cl.Answers++
	accepted := len(agreeing) >= max(cl.K, minClaimOrgs)
	if accepted {
		cl.Status, cl.AcceptedOutput, cl.AgreeingOrgs = "accepted", vote.OutputDigest, agreeing
	}
	raw, err := ledgerutil.PutJSON(ctx, ck, cl)
	if err != nil {
		return nil, err
	}
	if !accepted {
		return cl, nil
	}
	return cl, ctx.GetStub().SetEvent("ClaimAccepted", raw)
}

// ClaimAttestations lists every org's answer to a claim, by MSP ID.
func (c *Contract) ClaimAttestations(ctx contractapi.TransactionContextInterface, claim string) ([]*ClaimAttestation, error) {
	opener, id, err := splitClaimID(claim)
	if err != nil {
		return nil, err
	}
	return ledgerutil.ListRecords[*ClaimAttestation](ctx, claimVoteType, []string{opener, id}, "listing attestations of claim "+claim)
}

// GetClaim returns a claim by its "<opener MSP ID>:<id>".
func (c *Contract) GetClaim(ctx contractapi.TransactionContextInterface, claim string) (*Claim, error) {
	cl, _, err := c.loadClaim(ctx, claim)
	return cl, err
}

func (c *Contract) loadClaim(ctx contractapi.TransactionContextInterface, claim string) (*Claim, string, error) {
	ck, err := claimKey(ctx, claim)
	if err != nil {
		return nil, "", err
	}
	var cl Claim
	if err := ledgerutil.GetExisting(ctx, ck, &cl, "no claim %q", claim); err != nil {
		return nil, "", err
	}
	return &cl, ck, nil
}

// ExecutePayout records the payout of an accepted claim, once, for the amount fixed when
// it opened (the caller confirms it); only an admin of the org that opened the claim may.
func (c *Contract) ExecutePayout(ctx contractapi.TransactionContextInterface, claim, amount string) (*Payout, error) {
	who, err := caller.Admin(ctx, "ExecutePayout")
	if err != nil {
		return nil, err
	}
	if err := ledgerutil.Check("amount", amount, ledgerutil.AmountPattern); err != nil {
		return nil, err
	}
	cl, _, err := c.loadClaim(ctx, claim)
	if err != nil {
		return nil, err
	}
	if who.MSPID != cl.OpenedBy {
		return nil, ledgerutil.Refuse(ledgerutil.Forbidden, "only %s, which opened claim %s, executes its payout", cl.OpenedBy, claim)
	}
	if amount != cl.Amount {
		return nil, ledgerutil.Refuse(ledgerutil.Conflict, "claim %s pays %s, fixed when it opened, not %s", claim, cl.Amount, amount)
	}
	if cl.Status != "accepted" {
		return nil, ledgerutil.Refuse(ledgerutil.WrongPhase, "claim %s is %s: %d of %d organizations have not yet attested the same decision", claim, cl.Status, len(cl.AgreeingOrgs), cl.K)
	}
	opener, id, _ := splitClaimID(claim)
	pk, err := key(ctx, payoutKeyType, opener, id)
	if err != nil {
		return nil, err
	}
	var prior Payout
	if found, err := ledgerutil.GetJSON(ctx, pk, &prior); err != nil || found {
		if err == nil {
			err = ledgerutil.Refuse(ledgerutil.AlreadyDone, "claim %s was already paid out (transaction %s)", claim, prior.TxID)
		}
		return nil, err
	}
	now, err := ledgerutil.TxTime(ctx)
	if err != nil {
		return nil, err
	}
	p := &Payout{ClaimID: claim, Amount: amount, OutputDigest: cl.AcceptedOutput, ExecutedBy: who.MSPID, At: now, TxID: ctx.GetStub().GetTxID()}
	return p, ledgerutil.PutJSONWithEvent(ctx, pk, p, "PayoutExecuted")
}
