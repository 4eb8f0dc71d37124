"""The signed steps of a transaction: Proposal -> Transaction -> Commit -> Status.

Each step exposes to_bytes() and digest(), so a signature can be made elsewhere and
the step rebuilt from bytes plus signature (offline signing). Each step retries its own
transient failures under the gateway's RetryPolicy, re-sending the same signed bytes."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import transaction_pb2

from . import _messages
from ._client import Client
from .errors import CommitStatusError, EndorseError, EvaluateError, SubmitError, wrap
from .retry import Budget


@dataclass(frozen=True)
class Status:
    """How a transaction was committed."""

    transaction_id: str
    code: int
    block_number: int

    @property
    def code_name(self) -> str:
        return str(transaction_pb2.TxValidationCode.Name(self.code))

    @property
    def successful(self) -> bool:
        return self.code == int(transaction_pb2.VALID)


class Proposal:
    """A transaction proposal, signed or awaiting an offline signature."""

    def __init__(self, client: Client, channel: str, proposed: gateway_pb2.ProposedTransaction) -> None:
        self._client = client
        self._channel = channel
        self._proposed = proposed

    @property
    def transaction_id(self) -> str:
        return str(self._proposed.transaction_id)

    @property
    def endorsing_organizations(self) -> list[str]:
        return list(self._proposed.endorsing_organizations)

    def to_bytes(self) -> bytes:
        return bytes(self._proposed.SerializeToString())

    def digest(self) -> bytes:
        return self._client.hash(self._proposed.proposal.proposal_bytes)

    async def evaluate(self, timeout: float | None = None, budget: Budget | None = None) -> bytes:
        """Run the transaction on one peer and return its result; nothing is ordered.

        Raises EvaluateError."""
        self._client.require_signature(self._proposed.proposal.signature, "proposal")
        request = gateway_pb2.EvaluateRequest(
            transaction_id=self.transaction_id,
            channel_id=self._channel,
            proposed_transaction=self._proposed.proposal,
            target_organizations=self._proposed.endorsing_organizations,
        )

        async def once() -> bytes:
            try:
                response = await self._client.gateway.Evaluate(
                    request, timeout=timeout or self._client.deadlines.evaluate
                )
            except grpc.RpcError as err:
                raise wrap(EvaluateError, err, self.transaction_id) from err
            return bytes(response.result.payload)

        return await (budget or self._client.retry.budget()).run(f"evaluate {self._what()}", once)

    async def endorse(self, timeout: float | None = None, budget: Budget | None = None) -> Transaction:
        """Collect the endorsements the policy needs; the result is in the Transaction.
        Retrying sends the same proposal: nothing reaches the orderers before submit().

        Raises EndorseError."""
        self._client.require_signature(self._proposed.proposal.signature, "proposal")
        request = gateway_pb2.EndorseRequest(
            transaction_id=self.transaction_id,
            channel_id=self._channel,
            proposed_transaction=self._proposed.proposal,
            endorsing_organizations=self._proposed.endorsing_organizations,
        )

        async def once() -> Transaction:
            try:
                response = await self._client.gateway.Endorse(
                    request, timeout=timeout or self._client.deadlines.endorse
                )
            except grpc.RpcError as err:
                raise wrap(EndorseError, err, self.transaction_id) from err
            envelope = response.prepared_transaction
            envelope.signature = self._client.sign(envelope.payload)
            prepared = gateway_pb2.PreparedTransaction(transaction_id=self.transaction_id, envelope=envelope)
            return Transaction(self._client, self._channel, prepared)

        return await (budget or self._client.retry.budget()).run(f"endorse {self._what()}", once)

    def _what(self) -> str:
        return f"transaction {self.transaction_id[:12]}"


class Transaction:
    """An endorsed transaction, ready to be sent to the orderers."""

    def __init__(self, client: Client, channel: str, prepared: gateway_pb2.PreparedTransaction) -> None:
        self._client = client
        self._channel = channel
        self._prepared = prepared
        self.result = _messages.result_of(prepared.envelope)

    @property
    def transaction_id(self) -> str:
        return str(self._prepared.transaction_id)

    def to_bytes(self) -> bytes:
        return bytes(self._prepared.SerializeToString())

    def digest(self) -> bytes:
        return self._client.hash(self._prepared.envelope.payload)

    async def submit(self, timeout: float | None = None, budget: Budget | None = None) -> Commit:
        """Send the transaction for ordering; returns at once, before the commit.

        When a try fails with its fate unknown (the orderer may have taken it), the next
        try first asks whether it committed, and sends it again only if not. Sending again
        is always this same signed envelope, never a fresh proposal: its transaction ID is
        bound to its nonce, so a copy that also reaches a block is marked DUPLICATE_TXID
        and has no effect.

        Raises SubmitError."""
        self._client.require_signature(self._prepared.envelope.signature, "transaction")
        commit = self._commit()
        budget = budget or self._client.retry.budget()
        while True:
            try:
                await self._send(timeout)
                return commit
            except SubmitError as exc:
                if not await budget.pause(exc, f"submit transaction {self.transaction_id[:12]}"):
                    raise
            if await commit.committed(self._client.retry.status_probe):
                return commit

    async def _send(self, timeout: float | None) -> None:
        request = gateway_pb2.SubmitRequest(
            transaction_id=self.transaction_id,
            channel_id=self._channel,
            prepared_transaction=self._prepared.envelope,
        )
        try:
            await self._client.gateway.Submit(request, timeout=timeout or self._client.deadlines.submit)
        except grpc.RpcError as err:
            raise wrap(SubmitError, err, self.transaction_id) from err

    def _commit(self) -> Commit:
        request_bytes = _messages.commit_status_request(
            self._channel, self.transaction_id, self._client.creator
        )
        signed = gateway_pb2.SignedCommitStatusRequest(
            request=request_bytes, signature=self._client.sign(request_bytes)
        )
        return Commit(self._client, self.transaction_id, signed)


class Commit:
    """A submitted transaction whose commit status can be awaited."""

    def __init__(
        self, client: Client, transaction_id: str, signed: gateway_pb2.SignedCommitStatusRequest
    ) -> None:
        self._client = client
        self.transaction_id = transaction_id
        self._signed = signed

    def to_bytes(self) -> bytes:
        return bytes(self._signed.SerializeToString())

    def digest(self) -> bytes:
        return self._client.hash(self._signed.request)

    async def status(self, timeout: float | None = None, budget: Budget | None = None) -> Status:
        """Wait until the transaction is in a block and return how it was validated.
        A peer that cannot be reached is tried again; the deadline itself is not.

        Raises CommitStatusError."""
        self._client.require_signature(self._signed.signature, "commit")
        budget = budget or self._client.retry.budget()
        while True:
            try:
                return await self._ask(timeout or self._client.deadlines.commit_status)
            except CommitStatusError as exc:
                if exc.code == grpc.StatusCode.DEADLINE_EXCEEDED:
                    raise
                if not await budget.pause(exc, f"commit status of transaction {self.transaction_id[:12]}"):
                    raise

    async def committed(self, within: float) -> Status | None:
        """The status if the transaction is in a block within `within` seconds, else None
        (not committed, or the peer could not say)."""
        if not self._signed.signature:
            return None
        try:
            return await self._ask(within)
        except CommitStatusError:
            return None

    async def _ask(self, timeout: float) -> Status:
        try:
            response = await self._client.gateway.CommitStatus(self._signed, timeout=timeout)
        except grpc.RpcError as err:
            raise wrap(CommitStatusError, err, self.transaction_id) from err
        return Status(self.transaction_id, int(response.result), int(response.block_number))
