"""A thin synchronous facade over the asyncio client, for scripts and the CLI.

Each sync.Channel runs one event loop in a background thread; every call is the
async client's call, run on that loop and awaited."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

import grpc

from . import gateway as aio_gateway
from . import transaction as aio_tx
from ._client import Deadlines
from .checkpoint import Checkpointer
from .events import BlockKind, _Stream
from .gateway import Argument
from .identity import Identity
from .retry import DEFAULT, RetryPolicy
from .signing import Hash, Signer, sha256

T = TypeVar("T")


class Channel:
    """A gRPC channel and the event loop that drives it; the caller owns and closes it."""

    def __init__(
        self,
        target: str,
        credentials: grpc.ChannelCredentials | None = None,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fabricml-gateway", daemon=True)
        self._thread.start()

        async def open_channel() -> grpc.aio.Channel:
            if credentials is None:
                return grpc.aio.insecure_channel(target, options=list(options))
            return grpc.aio.secure_channel(target, credentials, options=list(options))

        self.aio = self.run(open_channel())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self.run(self.aio.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(
    channel: Channel,
    identity: Identity,
    signer: Signer | None = None,
    hash: Hash = sha256,
    deadlines: Deadlines | None = None,
    tls_client_certificate: bytes | None = None,
    retry: RetryPolicy = DEFAULT,
) -> Gateway:
    inner = aio_gateway.connect(channel.aio, identity, signer, hash, deadlines, tls_client_certificate, retry)
    return Gateway(channel, inner)


class Gateway:
    def __init__(self, channel: Channel, inner: aio_gateway.Gateway) -> None:
        self._channel = channel
        self._inner = inner

    @property
    def identity(self) -> Identity:
        return self._inner.identity

    def get_network(self, name: str) -> Network:
        return Network(self._channel, self._inner.get_network(name))

    def new_signed_proposal(self, proposal_bytes: bytes, signature: bytes) -> Proposal:
        return Proposal(self._channel, self._inner.new_signed_proposal(proposal_bytes, signature))

    def new_signed_transaction(self, transaction_bytes: bytes, signature: bytes) -> Transaction:
        return Transaction(self._channel, self._inner.new_signed_transaction(transaction_bytes, signature))

    def new_signed_commit(self, commit_bytes: bytes, signature: bytes) -> Commit:
        return Commit(self._channel, self._inner.new_signed_commit(commit_bytes, signature))

    def close(self) -> None:
        """Nothing to release: the caller owns the channel."""

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Events(Iterator[T]):
    """A blocking iterator over an async event stream; close() ends it."""

    def __init__(self, channel: Channel, make: Any) -> None:
        self._channel = channel
        self._stream: _Stream[T] = channel.run(_make_on_loop(make))

    def __iter__(self) -> Events[T]:
        return self

    def __next__(self) -> T:
        try:
            return self._channel.run(self._stream.__anext__())
        except StopAsyncIteration:
            raise StopIteration from None

    def close(self) -> None:
        self._channel._loop.call_soon_threadsafe(self._stream.close)

    def __enter__(self) -> Events[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _make_on_loop(make: Any) -> Any:
    # gRPC aio calls must be created on the loop that drives the channel; a sync stream
    # is open (its start block known) before the caller's next call.
    stream = make()
    await stream.ready()
    return stream


class Network:
    def __init__(self, channel: Channel, inner: aio_gateway.Network) -> None:
        self._channel = channel
        self._inner = inner
        self.name = inner.name

    def get_contract(self, chaincode_name: str, contract_name: str | None = None) -> Contract:
        return Contract(self._channel, self._inner.get_contract(chaincode_name, contract_name))

    def chaincode_events(
        self, chaincode_name: str, start_block: int | None = None, checkpointer: Checkpointer | None = None
    ) -> Events[Any]:
        return Events(
            self._channel, lambda: self._inner.chaincode_events(chaincode_name, start_block, checkpointer)
        )

    def block_events(
        self,
        start_block: int | None = None,
        checkpointer: Checkpointer | None = None,
        kind: BlockKind = "full",
    ) -> Events[Any]:
        return Events(self._channel, lambda: self._inner.block_events(start_block, checkpointer, kind))

    def height(self) -> int:
        return self._channel.run(self._inner.height())


class Contract:
    def __init__(self, channel: Channel, inner: aio_gateway.Contract) -> None:
        self._channel = channel
        self._inner = inner
        self.chaincode_name = inner.chaincode_name
        self.contract_name = inner.contract_name

    def new_proposal(
        self,
        function: str,
        arguments: Sequence[Argument] = (),
        transient: Mapping[str, Argument] | None = None,
        endorsing_organizations: Iterable[str] = (),
    ) -> Proposal:
        return Proposal(
            self._channel, self._inner.new_proposal(function, arguments, transient, endorsing_organizations)
        )

    def evaluate_transaction(
        self,
        function: str,
        *arguments: Argument,
        transient: Mapping[str, Argument] | None = None,
        endorsing_organizations: Iterable[str] = (),
    ) -> bytes:
        return self._channel.run(
            self._inner.evaluate_transaction(
                function, *arguments, transient=transient, endorsing_organizations=endorsing_organizations
            )
        )

    def submit_transaction(
        self,
        function: str,
        *arguments: Argument,
        transient: Mapping[str, Argument] | None = None,
        endorsing_organizations: Iterable[str] = (),
    ) -> bytes:
        return self._channel.run(
            self._inner.submit_transaction(
                function, *arguments, transient=transient, endorsing_organizations=endorsing_organizations
            )
        )

    def submit_async(
        self,
        function: str,
        *arguments: Argument,
        transient: Mapping[str, Argument] | None = None,
        endorsing_organizations: Iterable[str] = (),
    ) -> tuple[bytes, Commit]:
        result, commit = self._channel.run(
            self._inner.submit_async(
                function, *arguments, transient=transient, endorsing_organizations=endorsing_organizations
            )
        )
        return result, Commit(self._channel, commit)


class Proposal:
    def __init__(self, channel: Channel, inner: aio_tx.Proposal) -> None:
        self._channel = channel
        self._inner = inner
        self.transaction_id = inner.transaction_id

    def to_bytes(self) -> bytes:
        return self._inner.to_bytes()

    def digest(self) -> bytes:
        return self._inner.digest()

    def evaluate(self, timeout: float | None = None) -> bytes:
        return self._channel.run(self._inner.evaluate(timeout))

    def endorse(self, timeout: float | None = None) -> Transaction:
        return Transaction(self._channel, self._channel.run(self._inner.endorse(timeout)))


class Transaction:
    def __init__(self, channel: Channel, inner: aio_tx.Transaction) -> None:
        self._channel = channel
        self._inner = inner
        self.transaction_id = inner.transaction_id
        self.result = inner.result

    def to_bytes(self) -> bytes:
        return self._inner.to_bytes()

    def digest(self) -> bytes:
        return self._inner.digest()

    def submit(self, timeout: float | None = None) -> Commit:
        return Commit(self._channel, self._channel.run(self._inner.submit(timeout)))


class Commit:
    def __init__(self, channel: Channel, inner: aio_tx.Commit) -> None:
        self._channel = channel
        self._inner = inner
        self.transaction_id = inner.transaction_id

    def to_bytes(self) -> bytes:
        return self._inner.to_bytes()

    def digest(self) -> bytes:
        return self._inner.digest()

    def status(self, timeout: float | None = None) -> aio_tx.Status:
        return self._channel.run(self._inner.status(timeout))
