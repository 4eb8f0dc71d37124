"""Chaincode events and block events (full, filtered, with private data): receive, replay,
restart after close, independent listeners and checkpoints."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from fabricml.gateway import FileCheckpointer, sync
from fabricml.gateway.events import block_number_of, transaction_ids
from fabricml.network.network import Network
from tests.gateway.conftest import GatewayFactory, contract

KINDS = ["full", "filtered", "private"]


def _emit(c: sync.Contract, event: str = "Stored") -> tuple[str, int, bytes]:
    """Submit one transaction with a chaincode event; (tx id, block number, payload)."""
    payload = f"payload-{uuid.uuid4().hex[:8]}".encode()
    _, commit = c.submit_async("PutWithEvent", f"k-{uuid.uuid4().hex[:8]}", payload, event)
    status = commit.status()
    assert status.successful
    return commit.transaction_id, status.block_number, payload


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


def test_chaincode_events_are_received_with_block_and_transaction(
    network: Network, gateway: GatewayFactory
) -> None:
    gw = gateway()
    c = contract(gw, network)
    _, start, _ = _emit(c)
    with gw.get_network(network.topology.channel).chaincode_events(
        network.topology.chaincode_name, start + 1
    ) as ev:
        tx_id, block, payload = _emit(c, "Received")
        event = _next_event_for(ev, tx_id)
    assert (event.block_number, event.event_name, event.payload) == (block, "Received", payload)
    assert event.chaincode_name == network.topology.chaincode_name


def test_chaincode_events_replay_from_an_earlier_block(network: Network, gateway: GatewayFactory) -> None:
    gw = gateway()
    c = contract(gw, network)
    tx_id, block, payload = _emit(c, "Replayed")
    _emit(c)
    with gw.get_network(network.topology.channel).chaincode_events(
        network.topology.chaincode_name, block
    ) as ev:
        first = next(ev)
    assert (first.transaction_id, first.block_number, first.payload) == (tx_id, block, payload)


def test_chaincode_events_can_be_listened_to_again_after_close(
    network: Network, gateway: GatewayFactory
) -> None:
    gw = gateway()
    c = contract(gw, network)
    net = gw.get_network(network.topology.channel)
    tx1, block1, _ = _emit(c)
    events = net.chaincode_events(network.topology.chaincode_name, block1)
    assert next(events).transaction_id == tx1
    events.close()
    with pytest.raises(StopIteration):
        next(events)
    tx2, block2, _ = _emit(c)
    with net.chaincode_events(network.topology.chaincode_name, block2) as again:
        assert next(again).transaction_id == tx2


def test_independent_chaincode_event_listeners_each_receive_every_event(
    network: Network, gateway: GatewayFactory
) -> None:
    gw = gateway()
    c = contract(gw, network)
    net = gw.get_network(network.topology.channel)
    _, start, _ = _emit(c)
    with (
        net.chaincode_events(network.topology.chaincode_name, start + 1) as a,
        net.chaincode_events(network.topology.chaincode_name, start + 1) as b,
    ):
        tx_id, _, payload = _emit(c)
        assert _next_event_for(a, tx_id).payload == payload
        assert _next_event_for(b, tx_id).payload == payload


def test_a_chaincode_event_checkpoint_resumes_after_the_last_handled_event(
    network: Network, gateway: GatewayFactory, tmp_path: Path
) -> None:
    gw = gateway()
    c = contract(gw, network)
    net = gw.get_network(network.topology.channel)
    tx1, block1, _ = _emit(c)
    tx2, _, _ = _emit(c)
    checkpointer = FileCheckpointer(tmp_path / "events.json")
    with net.chaincode_events(network.topology.chaincode_name, block1) as ev:
        first = next(ev)
        assert first.transaction_id == tx1
        checkpointer.checkpoint_chaincode_event(first)
    restored = FileCheckpointer(tmp_path / "events.json")  # as after a process restart
    assert (restored.block_number, restored.transaction_id) == (block1, tx1)
    with net.chaincode_events(network.topology.chaincode_name, checkpointer=restored) as ev:
        assert next(ev).transaction_id == tx2


@pytest.mark.parametrize("kind", KINDS)
def test_block_events_are_received(network: Network, gateway: GatewayFactory, kind: str) -> None:
    gw = gateway()
    c = contract(gw, network)
    _, start, _ = _emit(c)
    with gw.get_network(network.topology.channel).block_events(start + 1, kind=kind) as ev:  # type: ignore[arg-type]
        tx_id, block_number, _ = _emit(c)
        block = _next_block_with(ev, tx_id)
    assert block_number_of(block) == block_number
    expected = {"full": "Block", "filtered": "FilteredBlock", "private": "BlockAndPrivateData"}[kind]
    assert type(block).__name__ == expected


@pytest.mark.parametrize("kind", KINDS)
def test_block_events_replay_from_an_earlier_block(
    network: Network, gateway: GatewayFactory, kind: str
) -> None:
    gw = gateway()
    c = contract(gw, network)
    tx_id, block_number, _ = _emit(c)
    _emit(c)
    with gw.get_network(network.topology.channel).block_events(block_number, kind=kind) as ev:  # type: ignore[arg-type]
        first = next(ev)
    assert block_number_of(first) == block_number and tx_id in transaction_ids(first)


@pytest.mark.parametrize("kind", KINDS)
def test_block_events_can_be_listened_to_again_after_close(
    network: Network, gateway: GatewayFactory, kind: str
) -> None:
    gw = gateway()
    c = contract(gw, network)
    net = gw.get_network(network.topology.channel)
    _, block1, _ = _emit(c)
    events = net.block_events(block1, kind=kind)  # type: ignore[arg-type]
    assert block_number_of(next(events)) == block1
    events.close()
    with pytest.raises(StopIteration):
        next(events)
    tx2, block2, _ = _emit(c)
    with net.block_events(block2, kind=kind) as again:  # type: ignore[arg-type]
        assert tx2 in transaction_ids(next(again))


@pytest.mark.parametrize("kind", KINDS)
def test_independent_block_listeners_each_receive_every_block(
    network: Network, gateway: GatewayFactory, kind: str
) -> None:
    gw = gateway()
    c = contract(gw, network)
    net = gw.get_network(network.topology.channel)
    _, start, _ = _emit(c)
    with (
        net.block_events(start + 1, kind=kind) as a,  # type: ignore[arg-type]
        net.block_events(start + 1, kind=kind) as b,  # type: ignore[arg-type]
    ):
        tx_id, block_number, _ = _emit(c)
        assert block_number_of(_next_block_with(a, tx_id)) == block_number
        assert block_number_of(_next_block_with(b, tx_id)) == block_number


@pytest.mark.parametrize("kind", KINDS)
def test_a_block_checkpoint_resumes_at_the_next_block(
    network: Network, gateway: GatewayFactory, kind: str, tmp_path: Path
) -> None:
    gw = gateway()
    c = contract(gw, network)
    net = gw.get_network(network.topology.channel)
    _, block1, _ = _emit(c)
    _emit(c)
    checkpointer = FileCheckpointer(tmp_path / "blocks.json")
    with net.block_events(block1, kind=kind) as ev:  # type: ignore[arg-type]
        checkpointer.checkpoint_block(block_number_of(next(ev)))
    with net.block_events(checkpointer=FileCheckpointer(tmp_path / "blocks.json"), kind=kind) as ev:  # type: ignore[arg-type]
        assert block_number_of(next(ev)) == block1 + 1
