"""Event streams: chaincode events from the Gateway, and blocks from the peer's Deliver service."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import grpc
from fabric_protos.common import common_pb2
from fabric_protos.peer import events_pb2

from .errors import GatewayError, wrap


@dataclass(frozen=True)
class ChaincodeEvent:
    block_number: int
    transaction_id: str
    chaincode_name: str
    event_name: str
    payload: bytes


E = TypeVar("E")


class _Stream(Generic[E]):
    """An async iterator over a server stream; close() ends it cleanly."""

    def __init__(self, call: Any) -> None:
        self._call = call
        self._buffer: deque[E] = deque()
        self._closed = False

    def __aiter__(self) -> _Stream[E]:
        return self

    async def __anext__(self) -> E:
        while not self._buffer:
            if self._closed:
                raise StopAsyncIteration
            try:
                response = await self._call.read()
            except asyncio.CancelledError:
                if self._closed:
                    raise StopAsyncIteration from None
                raise
            except grpc.RpcError as err:
                if self._closed or err.code() == grpc.StatusCode.CANCELLED:
                    raise StopAsyncIteration from None
                raise wrap(GatewayError, err) from err
            if response is grpc.aio.EOF:
                raise StopAsyncIteration
            self._buffer.extend(self._unpack(response))
        return self._buffer.popleft()

    def _unpack(self, response: Any) -> list[E]:
        raise NotImplementedError

    def close(self) -> None:
        self._closed = True
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


BlockKind = Literal["full", "filtered", "private"]


class BlockEvents(_Stream[Any]):
    """Blocks from the peer's Deliver service: common.Block, peer.FilteredBlock or
    peer.BlockAndPrivateData, depending on the kind asked for."""

    def _unpack(self, response: events_pb2.DeliverResponse) -> list[Any]:
        which = response.WhichOneof("Type")
        if which == "status":
            if response.status == common_pb2.SUCCESS:
                return []
            raise GatewayError(
                f"block delivery refused with status {common_pb2.Status.Name(response.status)}",
                grpc.StatusCode.UNKNOWN,
                [],
            )
        return [getattr(response, which)]


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
