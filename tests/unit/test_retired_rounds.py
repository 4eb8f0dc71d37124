"""Which files of past rounds an agent gives away once a round is adopted
(fabricml.federation.retired_rounds): never one a restart could need."""

from __future__ import annotations

from pathlib import Path

from fabricml.federation.agent_state import AgentState, RoundModel, StateDir
from fabricml.federation.retired_rounds import retire


def _round_files(files: StateDir, rounds: range) -> None:
    for r in rounds:
        files.put(f"global-{r}.bin", b"g%d" % r)
        files.put(f"update-{r}.bin", b"u%d" % r)
        (files.dir / f"fetched-{r}").mkdir()
        (files.dir / f"fetched-{r}" / ("a" * 64)).write_bytes(b"f%d" % r)


def _left(files: StateDir) -> set[str]:
    return {p.name for p in files.dir.iterdir() if p.name not in (".spares", "state.json")}


def _entry(round_: int) -> RoundModel:
    return RoundModel(round_, "fedavg", {}, "d" * 64, "tx", "parent@r0", {})


def test_after_round_r_only_what_a_restart_needs_stays(tmp_path: Path) -> None:
    files = StateDir(tmp_path)
    _round_files(files, range(0, 7))
    state = AgentState(rounds_done=6, settled_read=5)
    retire(files, state, 6)
    # the models of r, r-1, r-2 (round r's outcome is recomputed from them), r's update and
    # fetched updates; round 6's model is also not read as settled yet
    assert _left(files) == {"global-4.bin", "global-5.bin", "global-6.bin", "update-6.bin", "fetched-6"}
    assert len(list((tmp_path / ".spares").iterdir())) == 8  # the spare limit; the rest deleted


def test_a_model_still_to_register_or_not_read_as_settled_stays(tmp_path: Path) -> None:
    files = StateDir(tmp_path)
    _round_files(files, range(0, 9))
    state = AgentState(rounds_done=8, settled_read=3, to_register=[_entry(2)])
    retire(files, state, 8)
    kept = {n for n in _left(files) if n.startswith("global-")}
    # 2 is queued to register; 4..8 are settled later than the last settlement read (3)
    assert kept == {f"global-{r}.bin" for r in (2, 4, 5, 6, 7, 8)}
    assert {n for n in _left(files) if not n.startswith("global-")} == {"update-8.bin", "fetched-8"}


def test_global_bin_keeps_its_bytes_when_an_older_name_goes(tmp_path: Path) -> None:
    files = StateDir(tmp_path)
    _round_files(files, range(0, 5))
    (tmp_path / "global.bin").hardlink_to(tmp_path / "global-1.bin")  # as an old agent left it
    retire(files, AgentState(rounds_done=4, settled_read=4), 4)
    assert (tmp_path / "global.bin").read_bytes() == b"g1"
    assert not (tmp_path / "global-1.bin").exists()
