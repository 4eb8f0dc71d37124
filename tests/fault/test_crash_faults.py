"""The crash faults of issue 16, on the real network through the real CLI: a node is
killed with SIGKILL in the middle of `fabricml fed demo` and restarted 10 s later, and
the demo still finishes with every round FINALIZED, no agent dead, no honest participant
slashed and every token accounted for.

These are the fault matrix's task cells that the suite runs (leader@commit, peer@join,
peer@reveal; tests/fault/matrix.py names the cells); bench/fault_matrix.py runs every
cell, bench/soak.py kills every kind of node at random moments."""

from __future__ import annotations

import time
from typing import Any

import pytest

from fabricml.network.network import Network
from tests.fault.demo import Demo, start_demo, wait_for_task
from tests.fault.invariants import Auditor, read_ledger
from tests.fault.nodes import PAUSE, kill, not_running, raft_leader, restart

pytestmark = pytest.mark.network
ROUNDS = 2


def _crash(net: Network, node: str) -> None:
    kill(net, node)
    time.sleep(PAUSE)
    restart(net, node)


def _check_after(
    net: Network, auditor: Auditor, demo: Demo, summary: dict[str, Any], rounds: int = ROUNDS
) -> None:
    """The invariants every crash fault must leave intact."""
    auditor.check_task(demo.task, rounds)
    assert [r["status"] for r in summary["rounds"]] == ["FINALIZED"] * rounds
    assert summary["deployable"] is True, summary
    ledger = read_ledger(auditor.network)
    minted, held = auditor.token_accounts(ledger)
    assert minted == held > 0, f"{minted} tokens minted, {held} held"
    assert not_running(net) == [], f"not running after the fault: {not_running(net)}"


def test_the_task_finishes_when_the_raft_leader_is_killed_while_commitments_are_in_flight(
    fault_network: Network, auditor: Auditor
) -> None:
    demo = start_demo(fault_network, ROUNDS)
    try:
        wait_for_task(auditor, demo, lambda t: t["status"] == "running")
        wait_for_task(auditor, demo, lambda t: t["round"] > 1 or _committed(auditor, demo.task) > 0)
        _crash(fault_network, raft_leader(fault_network))
        summary = demo.finish(timeout=600)
    finally:
        demo.stop()
    assert raft_leader(fault_network)  # a leader again, the restarted one a follower or leader
    _check_after(fault_network, auditor, demo, summary)


def test_no_agent_dies_when_org2s_peer_is_killed_while_the_agents_join(
    fault_network: Network, auditor: Auditor
) -> None:
    demo = start_demo(fault_network, ROUNDS)
    try:
        wait_for_task(auditor, demo, lambda t: len(t["participants"]) >= 1)
        _crash(fault_network, fault_network.topology.org("org2").peer_name)
        summary = demo.finish(timeout=600)
    finally:
        demo.stop()
    _check_after(fault_network, auditor, demo, summary)
    joined = {p["mspId"] for p in auditor.call("Federation", "GetTask", demo.task)["participants"]}
    assert joined == {"Org1MSP", "Org2MSP", "Org3MSP"}


def test_the_demo_calls_through_org2_after_its_peer_was_killed_mid_round_and_restarted(
    fault_network: Network, auditor: Auditor
) -> None:
    # A round takes about a second at a 100 ms batch timeout: with four of them, "past
    # round 1 and still running" lasts long enough for the 0.1 s looks to see it.
    rounds = 4
    demo = start_demo(fault_network, rounds)
    try:
        mid = lambda t: t["status"] == "running" and t["round"] > 1  # noqa: E731
        wait_for_task(auditor, demo, mid, interval=0.1)
        _crash(fault_network, fault_network.topology.org("org2").peer_name)
        summary = demo.finish(timeout=600)
    finally:
        demo.stop()
    assert "org2" in summary["approvedBy"], summary  # the demo's last calls: org2's admin approves
    _check_after(fault_network, auditor, demo, summary, rounds)


def _committed(auditor: Auditor, task: str) -> int:
    return len(auditor.call("Federation", "Commitments", task, "1"))
