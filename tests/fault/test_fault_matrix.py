"""The fault matrix's CI cells (tests/fault/matrix.py; bench/fault_matrix.py runs every
cell): kill -9 at a moment of attested inference, a restart after the pause, and every
invariant read back from the ledger. The task moments' CI cells are the three cases of
test_crash_faults.py (the Raft leader at commit, org2's peer at join and at reveal)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fabricml.network.network import Network
from tests.fault.invariants import Auditor
from tests.fault.matrix import Cell, Serving, run_serving_cell

pytestmark = pytest.mark.network
CI_CELLS = ("inference@anchoring",)  # the suite's budget: one cell (~50 s); the bench runs all


@pytest.fixture(scope="module")
def serving(fault_network: Network, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serving]:
    s = Serving(fault_network, Path(tmp_path_factory.mktemp("serving")))
    try:
        yield s
    finally:
        s.stop()


@pytest.mark.parametrize("name", CI_CELLS)
def test_a_serving_moment_rides_out_a_killed_node(
    fault_network: Network, auditor: Auditor, serving: Serving, name: str
) -> None:
    outcome = run_serving_cell(fault_network, auditor, serving, Cell.parse(name))
    facts = outcome.to_json()
    assert outcome.survived, "\n".join(outcome.violations)
    assert facts["tokens"]["minted"] == facts["tokens"]["held"], facts
    if Cell.parse(name).moment == "anchoring":
        assert facts["receiptsAnchored"] == sum(facts["receipts"].values()) > 0, facts
    else:
        assert facts["claim"]["status"] == "accepted" and len(facts["claim"]["attestedBy"]) == 3, facts
