"""The fault matrix's cells and its table (tests/fault/matrix.py, bench/fault_matrix.py),
without a network: which cells exist, bad names refused, the table as the docs show it."""

from __future__ import annotations

import pytest

from bench.fault_matrix import table
from tests.fault.matrix import KINDS, MOMENTS, SERVING_MOMENTS, TASK_MOMENTS, Cell, all_cells


def test_every_kind_meets_every_moment_it_can_live_through() -> None:
    cells = {c.name for c in all_cells()}
    assert len(cells) == len(KINDS) * len(MOMENTS) - len(TASK_MOMENTS) - len(SERVING_MOMENTS) - 1
    assert {"leader@commit", "agent@join", "inference@claim", "peer@anchoring"} <= cells
    assert not {"agent@approval", "agent@anchoring", "inference@join"} & cells  # no such process then


@pytest.mark.parametrize("name", ["peer", "peer@", "@join", "peer@lunch", "mainframe@join", "agent@claim"])
def test_a_name_that_is_no_cell_is_refused_with_what_is_allowed(name: str) -> None:
    with pytest.raises(ValueError, match=r"kinds .*moments"):
        Cell.parse(name)


def test_the_table_has_a_row_per_kind_and_a_column_per_moment_in_the_matrix_order() -> None:
    results = [
        {"cell": "agent@commit", "survived": False, "seconds": 101.4},
        {"cell": "peer@join", "survived": True, "seconds": 3.2},
        {"cell": "orderer@whole task (BFT, 1 of 4 down)", "survived": True, "seconds": 60},
    ]
    lines = table(results).splitlines()
    assert lines[0] == "| killed \\ at | join | commit |"
    assert lines[2:] == ["| peer | ok 3s | — |", "| agent | — | FAIL 101s |"]
