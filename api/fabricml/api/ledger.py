"""The org's ledger as the API uses it: typed contract clients, one per identity, and the
mapping from the ledger's coded refusals to HTTP statuses.

Handlers await the asyncio Gateway client on the server's event loop, so a transaction
waiting for its commit never blocks other requests. Code that must block (the registry's
file checks, the audit report) uses the synchronous facade from worker threads."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import grpc

from fabricml.contracts import AsyncContract, ContractClient, RecordError, async_contract
from fabricml.gateway import CommitError, GatewayError, RefusalCode, refusal_of, sync
from fabricml.gateway._client import Deadlines
from fabricml.gateway.profile import ConnectionProfile

log = logging.getLogger("fabricml.api.ledger")

C = TypeVar("C", bound=ContractClient)
T = TypeVar("T")

# What a client can do about each refusal: look elsewhere, fix the request, ask someone
# else, or accept that the ledger's state does not allow it (now).
HTTP_STATUS = {
    RefusalCode.NOT_FOUND: 404,
    RefusalCode.INVALID: 422,
    RefusalCode.FORBIDDEN: 403,
    RefusalCode.CONFLICT: 409,
    RefusalCode.ALREADY_DONE: 409,
    RefusalCode.WRONG_PHASE: 409,
    RefusalCode.EXHAUSTED: 409,
    RefusalCode.INTERNAL: 500,
}


class LedgerError(Exception):
    """The ledger (or the org's CA) refused or failed a call; carries what a client needs
    to look it up: an HTTP status, the refusal code, the message, the transaction id and
    the endorsers."""

    def __init__(
        self,
        status: int,
        message: str,
        transaction_id: str = "",
        endorsers: tuple[str, ...] = (),
        code: str = "",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.transaction_id = transaction_id
        self.endorsers = endorsers
        self.code = code

    def __str__(self) -> str:
        tx = f" (transaction {self.transaction_id})" if self.transaction_id else ""
        return self.message + tx


def refusal(exc: GatewayError) -> LedgerError:
    """The HTTP answer to a Gateway error: by the chaincode's refusal code, never its wording."""
    endorsers = tuple(f"{d.address} ({d.msp_id})" for d in exc.details)
    coded = refusal_of(exc)
    if coded is not None:
        return LedgerError(HTTP_STATUS[coded.code], coded.message, exc.transaction_id, endorsers, coded.code)
    detail = next((d.message for d in exc.details if d.message), "") or str(exc).splitlines()[0]
    detail = detail.split("chaincode response 500, ", 1)[-1]  # keep the chaincode's own sentence
    if exc.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return LedgerError(503, f"the ledger is unreachable: {detail}", exc.transaction_id, endorsers)
    return LedgerError(409, detail, exc.transaction_id, endorsers)


def invalid_commit(exc: CommitError) -> LedgerError:
    message = f"the transaction was ordered but marked invalid: {exc.code_name} in block {exc.block_number}"
    return LedgerError(409, message, exc.transaction_id)


@contextmanager
def ledger_errors() -> Iterator[None]:
    """Gateway refusals, invalid commits and answers of the wrong shape, as LedgerError."""
    try:
        yield
    except GatewayError as exc:
        raise refusal(exc) from exc
    except CommitError as exc:
        raise invalid_commit(exc) from exc
    except RecordError as exc:
        raise LedgerError(502, f"the ledger's answer was not understood: {exc}") from exc


class OrgLedger:
    """Typed contracts of the org's chaincode, signed by one of the org's identities each."""

    def __init__(self, profile: ConnectionProfile, timeout_s: float = 60.0) -> None:
        self.profile = profile
        self._channel = profile.peer().sync_channel()
        self._deadlines = Deadlines(commit_status=timeout_s)
        self._clients: dict[tuple[str, type[ContractClient]], ContractClient] = {}
        self._lock = threading.Lock()
        # Handlers call the asyncio client on the server's own event loop: no thread hops.
        self._aio_channel: grpc.aio.Channel | None = None
        self._aio: dict[tuple[str, type[ContractClient]], AsyncContract[ContractClient]] = {}

    def gateway(self, identity: str) -> sync.Gateway:
        ident, signer, hash_ = self.profile.identity(identity)
        return sync.connect(self._channel, ident, signer, hash_, self._deadlines)

    def client(self, identity: str, client: type[C]) -> C:
        """A synchronous typed client (for worker threads); it raises Gateway errors as is."""
        with self._lock:
            key = (identity, client)
            if key not in self._clients:
                network = self.gateway(identity).get_network(self.profile.channel_name)
                self._clients[key] = client(
                    network.get_contract(self.profile.chaincode_name, client.CONTRACT)
                )
            found: C = self._clients[key]  # type: ignore[assignment]
            return found

    def call_sync(self, identity: str, client: type[C], use: Callable[[C], T]) -> T:
        """Blocking: one typed call; refusals become LedgerError."""
        with ledger_errors():
            return use(self.client(identity, client))

    async def call(self, identity: str, client: type[C], use: Callable[[C], T]) -> T:
        """One typed call on the server's event loop, e.g.
        `await ledger.call(who, FederationClient, lambda f: f.get_task(task_id))`;
        refusals become LedgerError."""
        contract = self._aio_contract(identity, client)
        with ledger_errors():
            return await contract.call(use)

    def _aio_contract(self, identity: str, client: type[C]) -> AsyncContract[C]:
        """A typed client on the calling event loop's channel (created on first use, on that loop)."""
        if self._aio_channel is None:
            self._aio_channel = self.profile.peer().channel()
        key = (identity, client)
        if key not in self._aio:
            made = async_contract(self._aio_channel, self.profile, identity, client, self._deadlines)
            self._aio[key] = made  # type: ignore[assignment]
        found: AsyncContract[C] = self._aio[key]  # type: ignore[assignment]
        return found

    def close(self) -> None:
        self._channel.close()

    async def aclose(self) -> None:
        if self._aio_channel is not None:
            await self._aio_channel.close()
            self._aio_channel = None
            self._aio.clear()
