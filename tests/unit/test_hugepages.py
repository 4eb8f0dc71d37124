"""The agent turns NumPy's huge-page advice off only where the kernel would compact
memory at every large allocation (fabricml.federation.hugepages)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fabricml.federation.hugepages import avoid_compaction_stalls, defrag_mode

toggle: Callable[[bool], bool] = getattr(np, "_core").multiarray._set_madvise_hugepage  # noqa: B009


@pytest.fixture
def advice() -> Iterator[Any]:
    before = toggle(True)
    yield
    toggle(before)


def _defrag(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "defrag"
    path.write_text(text)
    return path


def test_the_selected_mode_is_read_and_an_unreadable_file_is_unknown(tmp_path: Path) -> None:
    assert defrag_mode(_defrag(tmp_path, "always defer defer+madvise [madvise] never\n")) == "madvise"
    assert defrag_mode(_defrag(tmp_path, "[always] defer never\n")) == "always"
    assert defrag_mode(tmp_path / "absent") == ""


@pytest.mark.parametrize("mode", ["always", "madvise"])
def test_the_advice_is_turned_off_where_faults_compact(tmp_path: Path, mode: str, advice: object) -> None:
    path = _defrag(tmp_path, f"[{mode}] defer never")
    assert avoid_compaction_stalls(path)
    assert toggle(True) is False  # it was off


@pytest.mark.parametrize("text", ["always [defer] never", "always [never]", ""])
def test_the_advice_stays_where_faults_do_not_compact(tmp_path: Path, text: str, advice: object) -> None:
    assert not avoid_compaction_stalls(_defrag(tmp_path, text))
    assert toggle(True) is True  # still on
