"""Which files of past rounds an agent gives away (fabricml.federation.retired_rounds):
never one a restart from the saved state could need."""

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


def test_a_restart_from_the_saved_state_finds_what_it_needs(tmp_path: Path) -> None:
    files = StateDir(tmp_path)
    _round_files(files, range(0, 8))  # round 7 is being fetched, its update committed
    state = AgentState(rounds_done=6, settled_read=6)
    files.save(state)
    retire(files, state)
    # a restart acts on round 7: the models after 6 and 5, round 7's update and fetches
    assert _left(files) == {"global-5.bin", "global-6.bin", "global-7.bin", "update-7.bin", "fetched-7"}
    assert len(list((tmp_path / ".spares").iterdir())) == 8  # the spare limit; the rest deleted


def test_only_the_saved_state_counts_not_the_agents_newer_one(tmp_path: Path) -> None:
    files = StateDir(tmp_path)
    _round_files(files, range(0, 8))
    files.save(AgentState(rounds_done=4, settled_read=4))
    retire(files, AgentState(rounds_done=7, settled_read=7))  # adopted 7, not saved yet
    assert {n for n in _left(files) if n.startswith("global-")} == {f"global-{r}.bin" for r in range(3, 8)}
    assert {n for n in _left(files) if n.startswith("fetched-")} == {"fetched-5", "fetched-6", "fetched-7"}


def test_a_model_queued_or_possibly_queued_to_register_stays(tmp_path: Path) -> None:
    files = StateDir(tmp_path)
    _round_files(files, range(0, 9))
    saved = AgentState(rounds_done=8, settled_read=3, to_register=[_entry(1)])
    files.save(saved)
    # registered since (gone from the agent's queue) but queued in the saved state: a
    # restart reads its model again; 2 is newly queued; 4.. not read as settled yet
    retire(files, AgentState(rounds_done=8, settled_read=3, to_register=[_entry(2)]))
    kept = {n for n in _left(files) if n.startswith("global-")}
    assert kept == {f"global-{r}.bin" for r in (1, 2, 4, 5, 6, 7, 8)}


def test_global_bin_keeps_its_bytes_when_an_older_name_goes(tmp_path: Path) -> None:
    files = StateDir(tmp_path)
    _round_files(files, range(0, 5))
    (tmp_path / "global.bin").hardlink_to(tmp_path / "global-1.bin")  # as an old agent left it
    files.save(AgentState(rounds_done=4, settled_read=4))
    retire(files, AgentState(rounds_done=4, settled_read=4))
    assert (tmp_path / "global.bin").read_bytes() == b"g1"
    assert not (tmp_path / "global-1.bin").exists()
