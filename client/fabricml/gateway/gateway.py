"""Gateway -> Network -> Contract: the entry points of the client.

The caller creates and owns the gRPC channel; closing a Gateway leaves it open.
Every call rides out transient failures under the gateway's RetryPolicy (retry.py)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fabric_protos.common import common_pb2, ledger_pb2
from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import proposal_pb2

from . import _messages
from ._client import Client, Deadlines
from .checkpoint import Checkpointer
from .errors import CommitError, CommitStatusError
from .events import BlockEvents, BlockKind, ChaincodeEvents
from .identity import Identity
from .retry import DEFAULT, Budget, RetryPolicy
from .signing import Hash, Signer, sha256
from .transaction import Commit, Proposal, Status, Transaction

Argument = str | bytes


def _as_bytes(value: Argument) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise TypeError(f"arguments must be str or bytes, got {type(value).__name__}")


def connect(
    channel: grpc.aio.Channel,
    identity: Identity,
    signer: Signer | None = None,
    hash: Hash = sha256,
    deadlines: Deadlines | None = None,
    tls_client_certificate: bytes | None = None,
    retry: RetryPolicy = DEFAULT,
) -> Gateway:
    """A Gateway for `identity` over a channel to one peer. Without a signer every step
    must be signed offline. With mutual TLS, pass the channel's client certificate (PEM)
    so block-event requests carry its hash, as peers require. `retry` bounds how long
    each call keeps trying through transient failures (retry.NO_RETRY: not at all)."""
    cert_hash = b""
    if tls_client_certificate:
        der = x509.load_pem_x509_certificate(tls_client_certificate).public_bytes(serialization.Encoding.DER)
        cert_hash = hashlib.sha256(der).digest()
    return Gateway(Client(channel, identity, signer, hash, deadlines or Deadlines(), cert_hash, retry))


class Gateway:
    def __init__(self, client: Client) -> None:
        self._client = client

    @property
    def identity(self) -> Identity:
        return self._client.identity

    def get_network(self, name: str) -> Network:
        if not name:
            raise ValueError("network (channel) name must not be empty")
        return Network(self._client, name)

    def new_signed_proposal(self, proposal_bytes: bytes, signature: bytes) -> Proposal:
        proposed = gateway_pb2.ProposedTransaction.FromString(proposal_bytes)
        proposed.proposal.signature = signature
        return Proposal(
            self._client, _messages.channel_of_proposal(proposed.proposal.proposal_bytes), proposed
        )

    def new_signed_transaction(self, transaction_bytes: bytes, signature: bytes) -> Transaction:
        prepared = gateway_pb2.PreparedTransaction.FromString(transaction_bytes)
        prepared.envelope.signature = signature
        return Transaction(self._client, _messages.channel_of_envelope(prepared.envelope), prepared)

    def new_signed_commit(self, commit_bytes: bytes, signature: bytes) -> Commit:
        signed = gateway_pb2.SignedCommitStatusRequest.FromString(commit_bytes)
        signed.signature = signature
        request = gateway_pb2.CommitStatusRequest.FromString(signed.request)
        return Commit(self._client, request.transaction_id, signed)

    def close(self) -> None:
        """Nothing to release: the caller owns the gRPC channel."""

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Network:
    """One channel."""

    def __init__(self, client: Client, name: str) -> None:
        self._client = client
        self.name = name

    def get_contract(self, chaincode_name: str, contract_name: str | None = None) -> Contract:
        return Contract(self._client, self.name, chaincode_name, contract_name)

    def chaincode_events(
        self, chaincode_name: str, start_block: int | None = None, checkpointer: Checkpointer | None = None
    ) -> ChaincodeEvents:
        """Events of one chaincode from start_block (default: the ledger height now), or
        resuming where a checkpointer left off. After a dropped connection the stream
        reopens by itself, just after the last event it handed out."""
        after_tx = None
        if checkpointer is not None and checkpointer.block_number is not None:
            start_block, after_tx = checkpointer.block_number, checkpointer.transaction_id

        def open_at(block: int | None, after: str | None) -> Any:
            request = _messages.chaincode_events_request(
                self.name, chaincode_name, self._client.creator, block, after
            )
            signed = gateway_pb2.SignedChaincodeEventsRequest(
                request=request, signature=self._client.sign(request)
            )
            self._client.require_signature(signed.signature, "chaincode events request")
            return self._client.gateway.ChaincodeEvents(signed)

        return ChaincodeEvents(open_at, start_block, after_tx, self.height, self._client.retry)

    def block_events(
        self,
        start_block: int | None = None,
        checkpointer: Checkpointer | None = None,
        kind: BlockKind = "full",
    ) -> BlockEvents:
        """Blocks from start_block (default: the ledger height now): full blocks, "filtered"
        blocks (transaction IDs, status and events only) or blocks with "private" data.
        After a dropped connection the stream reopens by itself at the next block."""
        if checkpointer is not None and checkpointer.block_number is not None:
            start_block = checkpointer.block_number
        rpc = {"full": "Deliver", "filtered": "DeliverFiltered", "private": "DeliverWithPrivateData"}[kind]
        method = getattr(self._client.deliver, rpc)

        def open_at(block: int | None, _: str | None) -> Any:
            payload = _messages.seek_envelope_payload(
                self.name, self._client.creator, block, self._client.tls_cert_hash
            )
            envelope = common_pb2.Envelope(payload=payload, signature=self._client.sign(payload))
            self._client.require_signature(envelope.signature, "block events request")
            return method(iter([envelope]))

        return BlockEvents(open_at, start_block, None, self.height, self._client.retry)

    async def height(self) -> int:
        """The ledger height of the gateway's peer (the number of the next block), from qscc."""
        qscc = Contract(self._client, self.name, "qscc", None)
        info = await qscc.evaluate_transaction("GetChainInfo", self.name)
        return int(ledger_pb2.BlockchainInfo.FromString(info).height)


class Contract:
    """One chaincode, optionally one named contract inside it."""

    def __init__(self, client: Client, channel: str, chaincode_name: str, contract_name: str | None) -> None:
        self._client = client
        self._channel = channel
        self.chaincode_name = chaincode_name
        self.contract_name = contract_name

    def _qualified(self, function: str) -> str:
        if not function:
            raise ValueError("transaction function name must not be empty")
        return f"{self.contract_name}:{function}" if self.contract_name else function

    def new_proposal(
        self,
        function: str,
        arguments: Sequence[Argument] = (),
        transient: Mapping[str, Argument] | None = None,
        endorsing_organizations: Iterable[str] = (),
    ) -> Proposal:
        args = [self._qualified(function).encode(), *(_as_bytes(a) for a in arguments)]
        transient_bytes = {k: _as_bytes(v) for k, v in (transient or {}).items()}
        tx_id, proposal_bytes = _messages.proposal(
            self._channel, self.chaincode_name, args, transient_bytes, self._client.creator
        )
        signed = gateway_pb2.ProposedTransaction(
            transaction_id=tx_id,
            proposal=_signed_proposal(proposal_bytes, self._client.sign(proposal_bytes)),
            endorsing_organizations=list(endorsing_organizations),
        )
        return Proposal(self._client, self._channel, signed)

    async def evaluate_transaction(
        self,
        function: str,
        *arguments: Argument,
        transient: Mapping[str, Argument] | None = None,
        endorsing_organizations: Iterable[str] = (),
    ) -> bytes:
        """Evaluate on a peer and return the result. Raises EvaluateError."""
        return await self.new_proposal(function, arguments, transient, endorsing_organizations).evaluate()

    async def submit_async(
        self,
        function: str,
        *arguments: Argument,
        transient: Mapping[str, Argument] | None = None,
        endorsing_organizations: Iterable[str] = (),
    ) -> tuple[bytes, Commit]:
        """Endorse and submit; return the result and a Commit without waiting for it.

        Raises EndorseError, SubmitError."""
        budget = self._client.retry.budget()
        proposal = self.new_proposal(function, arguments, transient, endorsing_organizations)
        transaction = await proposal.endorse(budget=budget)
        return transaction.result, await transaction.submit(budget=budget)

    async def submit_transaction(
        self,
        function: str,
        *arguments: Argument,
        transient: Mapping[str, Argument] | None = None,
        endorsing_organizations: Iterable[str] = (),
    ) -> bytes:
        """Endorse, submit and wait for a valid commit; return the result. One budget
        covers every step; a transaction not in a block after the policy's
        `resubmit_after` is sent again (the same envelope: it takes effect at most once).
        One that committed invalid on a stale read (MVCC or phantom conflict) had no
        effect, so it is endorsed again as a new proposal, within the same budget and at
        most the policy's `stale_attempts` times.

        Raises EndorseError, SubmitError, CommitStatusError, CommitError."""
        budget = self._client.retry.budget()
        while True:
            proposal = self.new_proposal(function, arguments, transient, endorsing_organizations)
            transaction = await proposal.endorse(budget=budget)
            status = await self._until_committed(transaction, budget)
            if status.successful:
                return transaction.result
            failed = CommitError(status.transaction_id, status.code, status.code_name, status.block_number)
            if not await budget.pause(failed, f"transaction {status.transaction_id[:12]} ({function})"):
                raise failed

    async def _until_committed(self, transaction: Transaction, budget: Budget) -> Status:
        # An orderer that accepted the transaction may lose it (a Raft leader killed before
        # it cut the block): waiting longer would not help, sending the same envelope does.
        policy, deadlines = self._client.retry, self._client.deadlines
        wait = min(policy.resubmit_after, deadlines.commit_status) if policy.retries else None
        commit = await transaction.submit(budget=budget)
        while True:
            try:
                return await commit.status(wait, budget)
            except CommitStatusError as exc:
                if exc.code != grpc.StatusCode.DEADLINE_EXCEEDED or not await budget.pause(
                    exc, f"commit of transaction {transaction.transaction_id[:12]}"
                ):
                    raise
            commit = await transaction.submit(budget=budget)


def _signed_proposal(proposal_bytes: bytes, signature: bytes) -> proposal_pb2.SignedProposal:
    return proposal_pb2.SignedProposal(proposal_bytes=proposal_bytes, signature=signature)
