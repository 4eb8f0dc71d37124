"""Chaincode events and block events (full, filtered, with private data): receive, replay,
restart after close, independent listeners and checkpoints."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import pytest

from fabricml.gateway import FileCheckpointer, sync
from fabricml.gateway.events import BlockKind, block_number_of, transaction_ids
from fabricml.network.network import Network
from tests.gateway.conftest import GatewayFactory, contract

KINDS: tuple[BlockKind, ...] = get_args(BlockKind)


@dataclass(frozen=True)
class EventChannel:
    """One Gateway's channel: the Conformance contract to emit events with, and the stream to listen on."""

    contract: sync.Contract
    network: sync.Network
    chaincode: str  # the chaincode whose events are listened to

    def emit(self, event: str = "Stored") -> tuple[str, int, bytes]:
        """Submit one transaction with a chaincode event; (tx id, block number, payload)."""
        payload = f"payload-{uuid.uuid4().hex[:8]}".encode()
        _, commit = self.contract.submit_async("PutWithEvent", f"k-{uuid.uuid4().hex[:8]}", payload, event)
        status = commit.status()
        assert status.successful
        return commit.transaction_id, status.block_number, payload


@pytest.fixture
def channel(network: Network, gateway: GatewayFactory) -> EventChannel:
    gw = gateway()
    chaincode = network.topology.chaincode_name
    return EventChannel(contract(gw, network), gw.get_network(network.topology.channel), chaincode)


def _next_event_for(events: sync.Events[Any], tx_id: str) -> Any:
    for event in events:
        if event.transaction_id == tx_id:
            return event
    raise AssertionError(f"stream ended before transaction {tx_id}")


def _next_block_with(events: sync.Events[Any], tx_id: str) -> Any:
    for block in events:
        if tx_id in transaction_ids(block):
            return block
    raise AssertionError(f"stream ended before a block with {tx_id}")


def test_chaincode_events_are_received_with_block_and_transaction(channel: EventChannel) -> None:
    _, start, _ = channel.emit()
    with channel.network.chaincode_events(channel.chaincode, start + 1) as ev:
        tx_id, block, payload = channel.emit("Received")
        event = _next_event_for(ev, tx_id)
    assert (event.block_number, event.event_name, event.payload) == (block, "Received", payload)
    assert event.chaincode_name == channel.chaincode


def test_chaincode_events_replay_from_an_earlier_block(channel: EventChannel) -> None:
    tx_id, block, payload = channel.emit("Replayed")
    channel.emit()
    with channel.network.chaincode_events(channel.chaincode, block) as ev:
        first = next(ev)
    assert (first.transaction_id, first.block_number, first.payload) == (tx_id, block, payload)


def test_chaincode_events_can_be_listened_to_again_after_close(channel: EventChannel) -> None:
    tx1, block1, _ = channel.emit()
    events = channel.network.chaincode_events(channel.chaincode, block1)
    assert next(events).transaction_id == tx1
    events.close()
    with pytest.raises(StopIteration):
        next(events)
    tx2, block2, _ = channel.emit()
    with channel.network.chaincode_events(channel.chaincode, block2) as again:
        assert next(again).transaction_id == tx2


def test_independent_chaincode_event_listeners_each_receive_every_event(channel: EventChannel) -> None:
    _, start, _ = channel.emit()
    with (
        channel.network.chaincode_events(channel.chaincode, start + 1) as a,
        channel.network.chaincode_events(channel.chaincode, start + 1) as b,
    ):
        tx_id, _, payload = channel.emit()
        assert _next_event_for(a, tx_id).payload == payload
        assert _next_event_for(b, tx_id).payload == payload


def test_a_chaincode_event_checkpoint_resumes_after_the_last_handled_event(
    channel: EventChannel, tmp_path: Path
) -> None:
    tx1, block1, _ = channel.emit()
    tx2, _, _ = channel.emit()
    checkpointer = FileCheckpointer(tmp_path / "events.json")
    with channel.network.chaincode_events(channel.chaincode, block1) as ev:
        first = next(ev)
        assert first.transaction_id == tx1
        checkpointer.checkpoint_chaincode_event(first)
    restored = FileCheckpointer(tmp_path / "events.json")  # as after a process restart
    assert (restored.block_number, restored.transaction_id) == (block1, tx1)
    with channel.network.chaincode_events(channel.chaincode, checkpointer=restored) as ev:
        assert next(ev).transaction_id == tx2


@pytest.mark.parametrize("kind", KINDS)
def test_block_events_are_received(channel: EventChannel, kind: BlockKind) -> None:
    _, start, _ = channel.emit()
    with channel.network.block_events(start + 1, kind=kind) as ev:
        tx_id, block_number, _ = channel.emit()
        block = _next_block_with(ev, tx_id)
    assert block_number_of(block) == block_number
    expected = {"full": "Block", "filtered": "FilteredBlock", "private": "BlockAndPrivateData"}[kind]
    assert type(block).__name__ == expected


@pytest.mark.parametrize("kind", KINDS)
def test_block_events_replay_from_an_earlier_block(channel: EventChannel, kind: BlockKind) -> None:
    tx_id, block_number, _ = channel.emit()
    channel.emit()
    with channel.network.block_events(block_number, kind=kind) as ev:
        first = next(ev)
    assert block_number_of(first) == block_number and tx_id in transaction_ids(first)


@pytest.mark.parametrize("kind", KINDS)
def test_block_events_can_be_listened_to_again_after_close(channel: EventChannel, kind: BlockKind) -> None:
    _, block1, _ = channel.emit()
    events = channel.network.block_events(block1, kind=kind)
    assert block_number_of(next(events)) == block1
    events.close()
    with pytest.raises(StopIteration):
        next(events)
    tx2, block2, _ = channel.emit()
    with channel.network.block_events(block2, kind=kind) as again:
        assert tx2 in transaction_ids(next(again))


@pytest.mark.parametrize("kind", KINDS)
def test_independent_block_listeners_each_receive_every_block(channel: EventChannel, kind: BlockKind) -> None:
    _, start, _ = channel.emit()
    with (
        channel.network.block_events(start + 1, kind=kind) as a,
        channel.network.block_events(start + 1, kind=kind) as b,
    ):
        tx_id, block_number, _ = channel.emit()
        assert block_number_of(_next_block_with(a, tx_id)) == block_number
        assert block_number_of(_next_block_with(b, tx_id)) == block_number


@pytest.mark.parametrize("kind", KINDS)
def test_a_block_checkpoint_resumes_at_the_next_block(
    channel: EventChannel, kind: BlockKind, tmp_path: Path
) -> None:
    _, block1, _ = channel.emit()
    channel.emit()
    checkpointer = FileCheckpointer(tmp_path / "blocks.json")
    with channel.network.block_events(block1, kind=kind) as ev:
        checkpointer.checkpoint_block(block_number_of(next(ev)))
    with channel.network.block_events(
        checkpointer=FileCheckpointer(tmp_path / "blocks.json"), kind=kind
    ) as ev:
        assert block_number_of(next(ev)) == block1 + 1
