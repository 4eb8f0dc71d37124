"""The ledger layer's promises on the real network: a re-sent envelope takes effect once,
and an event stream that loses its peer resumes without losing or repeating events."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest

from fabricml.gateway import sync
from fabricml.gateway.profile import ConnectionProfile
from fabricml.network.network import Network
from tests.fault.conftest import PAUSE
from tests.fault.invariants import read_ledger
from tests.fault.nodes import kill, restart

pytestmark = pytest.mark.network


def _conformance(net: Network, org: str) -> tuple[sync.Channel, sync.Network, sync.Contract]:
    profile = ConnectionProfile.load(net.layout.profile(net.topology.org(org)))
    identity, signer, hash_ = profile.identity("user1")
    channel = profile.peer().sync_channel()
    network = sync.connect(channel, identity, signer, hash_).get_network(profile.channel_name)
    return channel, network, network.get_contract(profile.chaincode_name, "Conformance")


def test_the_same_envelope_sent_twice_commits_once_and_the_copy_changes_nothing(
    fault_network: Network,
) -> None:
    channel, network, c = _conformance(fault_network, "org1")
    with channel:
        before = read_ledger(network)
        transaction = c.new_proposal(
            "PutWithEvent", [f"k-{uuid.uuid4().hex[:8]}", "once", "Counted"]
        ).endorse()
        first = transaction.submit().status()
        again = transaction.submit().status()  # what a retry after an unknown fate does
        time.sleep(2)  # let the copy reach a block of its own
        after = read_ledger(network)
    assert first.successful and again == first  # the ID's status stays the first copy's
    assert after.duplicates == before.duplicates + 1  # the copy: in a block, marked DUPLICATE_TXID
    counted = [p for name, p in after.events if name == "Counted"]
    assert len(counted) == len([p for name, p in before.events if name == "Counted"]) + 1


def test_an_event_stream_through_a_killed_and_restarted_peer_misses_and_repeats_nothing(
    fault_network: Network,
) -> None:
    org2 = fault_network.topology.org("org2")
    ch1, _, c1 = _conformance(fault_network, "org1")
    ch2, n2, _ = _conformance(fault_network, "org2")
    with ch1, ch2:
        events = n2.chaincode_events(fault_network.topology.chaincode_name)
        blocks = n2.block_events(kind="filtered")
        got: dict[str, list[Any]] = {"events": [], "blocks": []}
        threads = [_follow(events, got["events"]), _follow(blocks, got["blocks"])]
        sent = [_emit(c1)]
        kill(fault_network, org2.peer_name)
        sent += [_emit(c1) for _ in range(3)]  # committed while org2's peer is down
        time.sleep(PAUSE)
        restart(fault_network, org2.peer_name)
        sent += [_emit(c1) for _ in range(2)]
        end = time.monotonic() + 120
        while time.monotonic() < end and not _caught_up(got, sent):
            time.sleep(0.5)
        events.close()
        blocks.close()
        for t in threads:
            t.join(timeout=10)
    ids = [e.transaction_id for e in got["events"]]
    assert [i for i in ids if i in sent] == sent and len(ids) == len(set(ids)), (sent, ids)
    numbers = [b.number for b in got["blocks"]]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), numbers  # no gap, no repeat
    blocks_of = {e.transaction_id: e.block_number for e in got["events"]}
    assert numbers[0] <= blocks_of[sent[0]] and numbers[-1] >= blocks_of[sent[-1]], (numbers, blocks_of)


def _caught_up(got: dict[str, list[Any]], sent: list[str]) -> bool:
    """Both streams are past the block of the last transaction sent."""
    blocks_of = {e.transaction_id: e.block_number for e in got["events"]}
    if not set(sent) <= blocks_of.keys() or not got["blocks"]:
        return False
    return bool(got["blocks"][-1].number >= max(blocks_of[t] for t in sent))


def _emit(c: sync.Contract) -> str:
    _, commit = c.submit_async("PutWithEvent", f"k-{uuid.uuid4().hex[:8]}", "p", "Resumed")
    assert commit.status().successful
    return commit.transaction_id


def _follow(stream: sync.Events[Any], into: list[Any]) -> threading.Thread:
    def body() -> None:
        for item in stream:  # an error here would end the list early and fail the test
            into.append(item)

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread
