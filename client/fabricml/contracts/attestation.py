"""The Attestation contract: anchored receipt batches, inclusion checks, k-of-n claims."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .call import ContractClient, evaluate, submit
from .records import Record, many


class ServiceId(Record):
    msp_id: str
    subject: str


class ServiceState(Record):
    service: ServiceId
    last_sequence: int  # the last anchored batch
    last_receipt: int  # the last receipt in it


class BatchRequest(Record):
    sequence: int
    model: str
    root: str  # Merkle root of the receipts, hex
    count: int
    first_receipt: int
    last_receipt: int


class Batch(BatchRequest):
    service: ServiceId
    anchored_at: str
    tx_id: str


class InclusionResult(Record):
    included: bool
    root: str
    tx_id: str


class Claim(Record):
    id: str
    input_digest: str
    model_name: str
    k: int
    amount: str = ""  # the payout, fixed when the claim opens
    opened_by: str
    opened_tx_id: str
    status: str  # open, accepted, paid
    accepted_output: str
    agreeing_orgs: tuple[str, ...] = ()
    answers: int = 0  # attestations so far


class ClaimAttestation(Record):
    claim_id: str
    service: ServiceId
    output_digest: str
    model: str
    batch: int
    at: str
    tx_id: str


class Payout(Record):
    claim_id: str
    amount: str
    output_digest: str
    executed_by: str
    at: str
    tx_id: str


@dataclass(frozen=True)
class ReceiptProof:
    """A receipt with the batch it was anchored in and its Merkle inclusion proof."""

    receipt: Mapping[str, Any]
    batch: int
    proof: Mapping[str, Any] = field(default_factory=dict)

    def args(self) -> tuple[str, str, str]:
        return json.dumps(dict(self.receipt)), str(self.batch), json.dumps(dict(self.proof))


class AttestationClient(ContractClient):
    """Typed calls of the Attestation contract."""

    CONTRACT = "Attestation"

    def anchor_batch(self, request: BatchRequest) -> Batch:
        """Anchor a batch of the calling inference service's receipts (role=inference).
        Refusals: FORBIDDEN, INVALID, CONFLICT (the sequence or receipts are not the next)."""
        body = json.dumps(request.to_json(), sort_keys=True)
        return self._run(submit(Batch.from_bytes, "AnchorBatch", body))

    def get_service(self, msp_id: str, subject: str) -> ServiceState:
        """A service's last anchored batch and receipt (zeros before its first)."""
        return self._run(evaluate(ServiceState.from_bytes, "GetService", msp_id, subject))

    def get_batch(self, msp_id: str, subject: str, sequence: int) -> Batch:
        """Refusals: NOT_FOUND."""
        return self._run(evaluate(Batch.from_bytes, "GetBatch", msp_id, subject, str(sequence)))

    def verify_inclusion(self, proof: ReceiptProof) -> InclusionResult:
        """Whether the receipt is in the anchored batch. Refusals: NOT_FOUND, INVALID."""
        return self._run(evaluate(InclusionResult.from_bytes, "VerifyInclusion", *proof.args()))

    def open_claim(self, claim_id: str, input_digest: str, model_name: str, k: int, amount: str) -> Claim:
        """Open a decision that k (2 to the members) organizations' services must agree on
        (org admins), with its payout amount fixed now. The claim's id on the ledger is
        "<opener's MSP ID>:<claim_id>" (Claim.id). Refusals: INVALID, FORBIDDEN, CONFLICT."""
        args = (claim_id, input_digest, model_name, str(k), amount)
        return self._run(submit(Claim.from_bytes, "OpenClaim", *args))

    def attest_claim(self, claim_id: str, proof: ReceiptProof) -> Claim:
        """The calling service's attested answer to a claim (role=inference).
        Refusals: NOT_FOUND, FORBIDDEN, INVALID, WRONG_PHASE (claim decided), ALREADY_DONE."""
        return self._run(submit(Claim.from_bytes, "AttestClaim", claim_id, *proof.args()))

    def claim_attestations(self, claim_id: str) -> tuple[ClaimAttestation, ...]:
        """Every organization's attestation of the claim. Refusals: NOT_FOUND."""
        return self._run(evaluate(many(ClaimAttestation), "ClaimAttestations", claim_id))

    def get_claim(self, claim_id: str) -> Claim:
        """Refusals: NOT_FOUND."""
        return self._run(evaluate(Claim.from_bytes, "GetClaim", claim_id))

    def execute_payout(self, claim_id: str, amount: str) -> Payout:
        """Pay an accepted claim, once (admins of the org that opened it; the amount fixed at
        opening). Refusals: NOT_FOUND, FORBIDDEN, INVALID (amount), WRONG_PHASE (not
        accepted), ALREADY_DONE (paid)."""
        return self._run(submit(Payout.from_bytes, "ExecutePayout", claim_id, amount))
