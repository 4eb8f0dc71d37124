"""Event streams: chaincode events from the Gateway, and blocks from the peer's Deliver service."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import grpc
from fabric_protos.common import common_pb2
from fabric_protos.peer import events_pb2

from .errors import GatewayError, wrap
from .retry import Budget, RetryPolicy


@dataclass(frozen=True)
class ChaincodeEvent:
    block_number: int
    transaction_id: str
    chaincode_name: str
    event_name: str
    payload: bytes


E = TypeVar("E")
# Opens the server stream at (block, after this transaction in it), or at the next commit.
Opener = Callable[[int | None, str | None], Any]


class _Stream(Generic[E]):
    """An async iterator over a server stream that reopens itself after a transient
    failure (a peer restarted, the connection dropped), resuming just after the last
    item it handed out, so nothing is lost or repeated; close() ends it cleanly.

    Without a start block it starts at the ledger height when it was opened (asked of
    the peer), so that even a drop before the first item resumes at the right block."""

    def __init__(
        self,
        open_at: Opener,
        start_block: int | None,
        after_transaction_id: str | None,
        height: Callable[[], Awaitable[int]] | None,
        policy: RetryPolicy,
    ) -> None:
        self._open_at = open_at
        self._block, self._after_tx = start_block, after_transaction_id
        self._height, self._policy = height, policy
        self._buffer: deque[E] = deque()
        self._closed = False
        self._closing: asyncio.Event | None = None
        self._call: Any = None
        self._opening: asyncio.Future[None] | None = None
        if start_block is not None or height is None:
            self._call = open_at(start_block, after_transaction_id)
        else:
            with contextlib.suppress(RuntimeError):  # no running loop: the first read opens it
                asyncio.get_running_loop()
                self._opening = asyncio.ensure_future(self._open_at_height())

    async def _open_at_height(self) -> None:
        assert self._height is not None
        self._block = await self._height()
        self._call = self._open_at(self._block, None)

    async def ready(self) -> None:
        """Wait until the stream is open (its start block known)."""
        if self._call is None and self._opening is None:
            self._opening = asyncio.ensure_future(self._open_at_height())
        if self._opening is not None:
            opening, self._opening = self._opening, None
            try:
                await opening
            except BaseException:
                self._opening = None
                raise

    def __aiter__(self) -> _Stream[E]:
        return self

    async def __anext__(self) -> E:
        budget: Budget | None = None
        while not self._buffer:
            if self._closed:
                raise StopAsyncIteration
            try:
                await self.ready()
                response = await self._call.read()
                if response is grpc.aio.EOF:
                    raise StopAsyncIteration
                self._buffer.extend(self._unpack(response))
                budget = None  # the next failure is a new outage, with a new budget
            except asyncio.CancelledError:
                if self._closed:
                    raise StopAsyncIteration from None
                raise
            except grpc.RpcError as err:
                if self._closed or err.code() == grpc.StatusCode.CANCELLED:
                    raise StopAsyncIteration from None
                budget = budget or Budget(self._policy, sleep=self._sleep)
                error = wrap(GatewayError, err)
                if not await budget.pause(error, f"event stream (resuming at block {self._block})"):
                    raise error from err
                self._reopen()
            except GatewayError as error:  # a refused delivery, or the start height unknown
                budget = budget or Budget(self._policy, sleep=self._sleep)
                if self._closed or not await budget.pause(error, "event stream"):
                    raise
                self._reopen()
        item = self._buffer.popleft()
        self._advance(item)
        return item

    def _reopen(self) -> None:
        if self._call is None:
            return  # never opened: ready() opens it at the height
        self._call.cancel()
        self._call = self._open_at(self._block, self._after_tx)

    async def _sleep(self, seconds: float) -> None:
        # A pause between tries ends early when the stream is closed.
        self._closing = self._closing or asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    def _unpack(self, response: Any) -> list[E]:
        raise NotImplementedError

    def _advance(self, item: E) -> None:
        """Remember where to resume once `item` is handed out."""
        raise NotImplementedError

    def close(self) -> None:
        self._closed = True
        if self._closing is not None:
            self._closing.set()
        if self._opening is not None:
            self._opening.cancel()
        if self._call is not None:
            self._call.cancel()

    async def __aenter__(self) -> _Stream[E]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class ChaincodeEvents(_Stream[ChaincodeEvent]):
    """Chaincode events in commit order, each with its block number and transaction ID."""

    def _unpack(self, response: Any) -> list[ChaincodeEvent]:
        return [
            ChaincodeEvent(
                int(response.block_number), e.tx_id, e.chaincode_id, e.event_name, bytes(e.payload)
            )
            for e in response.events
        ]

    def _advance(self, item: ChaincodeEvent) -> None:
        self._block, self._after_tx = item.block_number, item.transaction_id


BlockKind = Literal["full", "filtered", "private"]


class BlockEvents(_Stream[Any]):
    """Blocks from the peer's Deliver service: common.Block, peer.FilteredBlock or
    peer.BlockAndPrivateData, depending on the kind asked for."""

    def _unpack(self, response: events_pb2.DeliverResponse) -> list[Any]:
        which = response.WhichOneof("Type")
        if which == "status":
            if response.status == common_pb2.SUCCESS:
                return []
            # A peer still starting answers SERVICE_UNAVAILABLE: worth asking again.
            unavailable = response.status == common_pb2.SERVICE_UNAVAILABLE
            raise GatewayError(
                f"block delivery refused with status {common_pb2.Status.Name(response.status)}",
                grpc.StatusCode.UNAVAILABLE if unavailable else grpc.StatusCode.UNKNOWN,
                [],
            )
        return [getattr(response, which)]

    def _advance(self, item: Any) -> None:
        self._block, self._after_tx = block_number_of(item) + 1, None


def block_number_of(block: Any) -> int:
    """The number of a Block, FilteredBlock or BlockAndPrivateData."""
    if isinstance(block, events_pb2.FilteredBlock):
        return int(block.number)
    if isinstance(block, events_pb2.BlockAndPrivateData):
        return int(block.block.header.number)
    return int(block.header.number)


def transaction_ids(block: Any) -> list[str]:
    """The transaction IDs in a Block, FilteredBlock or BlockAndPrivateData, in block order."""
    if isinstance(block, events_pb2.FilteredBlock):
        return [t.txid for t in block.filtered_transactions]
    if isinstance(block, events_pb2.BlockAndPrivateData):
        block = block.block
    ids = []
    for raw in block.data.data:
        payload = common_pb2.Payload.FromString(common_pb2.Envelope.FromString(raw).payload)
        ids.append(common_pb2.ChannelHeader.FromString(payload.header.channel_header).tx_id)
    return ids
