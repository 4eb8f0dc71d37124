"""The org's ledger as the API uses it: Gateway connections, one contract per identity.

Handlers await the asyncio Gateway client on the server's event loop, so a transaction
waiting for its commit never blocks other requests. Code that must block (the registry's
file checks, the audit report) uses the synchronous facade from worker threads."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import grpc

from fabricml.gateway import CommitError, Contract, GatewayError, connect, sync
from fabricml.gateway._client import Deadlines
from fabricml.gateway.profile import ConnectionProfile

log = logging.getLogger("fabricml.api.ledger")

CONTRACTS = ("Consortium", "Registry", "Federation", "Attestation", "Token")
# Chaincode messages that mean "there is no such thing" rather than "you may not".
_NOT_FOUND = (
    "no model version",
    "no federated task",
    "has not ended",
    "no claim",
    "anchored no batch",
    "no such",
    "not found",
    "does not exist",
    "is not registered",
)


class LedgerError(Exception):
    """The ledger (or the org's CA) refused or failed a call; carries what a client needs
    to look it up: an HTTP status, the message, the transaction id and the endorsers."""

    def __init__(self, status: int, message: str, transaction_id: str = "", endorsers: tuple[str, ...] = ()):
        super().__init__(message)
        self.status = status
        self.message = message
        self.transaction_id = transaction_id
        self.endorsers = endorsers

    def __str__(self) -> str:
        tx = f" (transaction {self.transaction_id})" if self.transaction_id else ""
        return self.message + tx


def refusal(exc: GatewayError) -> LedgerError:
    detail = next((d.message for d in exc.details if d.message), "") or str(exc).splitlines()[0]
    # The peer wraps chaincode errors: keep the chaincode's own sentence.
    message = detail.split("chaincode response 500, ", 1)[-1]
    endorsers = tuple(f"{d.address} ({d.msp_id})" for d in exc.details)
    if exc.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return LedgerError(503, f"the ledger is unreachable: {message}", exc.transaction_id, endorsers)
    status = 404 if any(s in message.lower() for s in _NOT_FOUND) else 409
    return LedgerError(status, message, exc.transaction_id, endorsers)


def invalid_commit(exc: CommitError) -> LedgerError:
    message = f"the transaction was ordered but marked invalid: {exc.code_name} in block {exc.block_number}"
    return LedgerError(409, message, exc.transaction_id)


class OrgLedger:
    """Contracts of the org's chaincode, signed by one of the org's identities each."""

    def __init__(self, profile: ConnectionProfile, timeout_s: float = 60.0) -> None:
        self.profile = profile
        self._channel = profile.peer().sync_channel()
        self._deadlines = Deadlines(commit_status=timeout_s)
        self._contracts: dict[tuple[str, str], sync.Contract] = {}
        self._lock = threading.Lock()
        # Handlers call the asyncio client on the server's own event loop: no thread hops.
        self._aio_channel: grpc.aio.Channel | None = None
        self._aio_contracts: dict[tuple[str, str], Contract] = {}

    @property
    def channel(self) -> sync.Channel:
        return self._channel

    def gateway(self, identity: str) -> sync.Gateway:
        ident, signer, hash_ = self.profile.identity(identity)
        return sync.connect(self._channel, ident, signer, hash_, self._deadlines)

    def contract(self, identity: str, name: str) -> sync.Contract:
        with self._lock:
            key = (identity, name)
            if key not in self._contracts:
                network = self.gateway(identity).get_network(self.profile.channel_name)
                self._contracts[key] = network.get_contract(self.profile.chaincode_name, name)
            return self._contracts[key]

    def close(self) -> None:
        self._channel.close()

    # ---- calls (blocking; use the async versions from handlers) ---------------------

    def evaluate_sync(self, identity: str, contract: str, function: str, *args: str) -> Any:
        try:
            raw = self.contract(identity, contract).evaluate_transaction(function, *args)
        except GatewayError as exc:
            raise refusal(exc) from exc
        return json.loads(raw) if raw else None

    def submit_sync(self, identity: str, contract: str, function: str, *args: str) -> Any:
        try:
            raw = self.contract(identity, contract).submit_transaction(function, *args)
        except GatewayError as exc:
            raise refusal(exc) from exc
        except CommitError as exc:
            raise invalid_commit(exc) from exc
        log.info("submitted %s:%s as %s", contract, function, identity)
        return json.loads(raw) if raw else None

    def _aio_contract(self, identity: str, name: str) -> Contract:
        """A contract on the calling event loop's channel (created on first use, on that loop)."""
        if self._aio_channel is None:
            self._aio_channel = self.profile.peer().channel()
        key = (identity, name)
        if key not in self._aio_contracts:
            ident, signer, hash_ = self.profile.identity(identity)
            gateway = connect(self._aio_channel, ident, signer, hash_, self._deadlines)
            network = gateway.get_network(self.profile.channel_name)
            self._aio_contracts[key] = network.get_contract(self.profile.chaincode_name, name)
        return self._aio_contracts[key]

    async def evaluate(self, identity: str, contract: str, function: str, *args: str) -> Any:
        try:
            raw = await self._aio_contract(identity, contract).evaluate_transaction(function, *args)
        except GatewayError as exc:
            raise refusal(exc) from exc
        return json.loads(raw) if raw else None

    async def submit(self, identity: str, contract: str, function: str, *args: str) -> Any:
        """Endorse, order and wait for the commit without blocking the event loop."""
        try:
            raw = await self._aio_contract(identity, contract).submit_transaction(function, *args)
        except GatewayError as exc:
            raise refusal(exc) from exc
        except CommitError as exc:
            raise invalid_commit(exc) from exc
        log.info("submitted %s:%s as %s", contract, function, identity)
        return json.loads(raw) if raw else None

    async def aclose(self) -> None:
        if self._aio_channel is not None:
            await self._aio_channel.close()
            self._aio_channel = None
            self._aio_contracts.clear()
