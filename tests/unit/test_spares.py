"""Files written over instead of anew (fabricml.registry.spares): the bytes are exactly the
new ones, a file with another link is never written over, and the best-fitting spare is
taken."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fabricml.federation.agent_state import StateDir, atomic_file
from fabricml.registry.artifacts import ArtifactStore
from fabricml.registry.digests import sha256_bytes
from fabricml.registry.spares import Spares, link_or_copy, new_file


def _file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_a_spare_is_written_over_and_holds_exactly_the_new_bytes(tmp_path: Path) -> None:
    pool = Spares(tmp_path / ".spares")
    old = _file(tmp_path / "old.bin", b"\xff" * 10_000)
    inode = old.stat().st_ino
    pool.give(old)
    assert not old.exists()
    dest = tmp_path / "new.bin"
    with new_file(dest, pool, 4_000) as f:
        f.write(b"new bytes" * 400)
    assert dest.read_bytes() == b"new bytes" * 400  # the spare's longer tail is cut off
    assert dest.stat().st_ino == inode  # its pages were written over, not new ones
    with new_file(tmp_path / "other.bin", pool, 10) as f:  # no spare left: a new file
        f.write(b"x")
    assert (tmp_path / "other.bin").read_bytes() == b"x"


def test_a_file_with_another_link_is_deleted_never_written_over(tmp_path: Path) -> None:
    pool = Spares(tmp_path / ".spares")
    store = ArtifactStore(tmp_path / "store")
    update = _file(tmp_path / "update.bin", os.urandom(50_000))
    digest = store.put_file(update, link=True)
    assert store.path(digest).stat().st_ino == update.stat().st_ino  # linked, not copied
    pool.give(update)  # the store's name still holds these bytes
    assert not update.exists() and not (tmp_path / ".spares").exists()
    with new_file(tmp_path / "next.bin", pool, 50_000) as f:
        f.write(b"\0" * 50_000)
    assert store.verify(digest)


def test_the_best_fitting_spare_is_taken(tmp_path: Path) -> None:
    pool = Spares(tmp_path / ".spares")
    for size in (30, 90, 200):
        pool.give(_file(tmp_path / f"s{size}", b"s" * size))
    sizes = []
    for want in (80, 10, 500):
        dest = tmp_path / f"got{want}"
        assert pool.take(dest, want)
        sizes.append(dest.stat().st_size)
    # 80: 90 fits snugly; 10: 30 is more than twice as large, no smaller one: still taken;
    # 500: none as large, the largest smaller one
    assert sizes == [90, 30, 200]
    assert not pool.take(tmp_path / "none", 1)


def test_no_more_than_the_limit_are_kept(tmp_path: Path) -> None:
    pool = Spares(tmp_path / ".spares", limit=2)
    for i in range(4):
        pool.give(_file(tmp_path / f"f{i}", b"x"))
    assert len(list((tmp_path / ".spares").iterdir())) == 2
    assert not list(tmp_path.glob("f*"))


def test_a_write_over_a_spare_that_fails_midway_leaves_no_file(tmp_path: Path) -> None:
    files = StateDir(tmp_path / "agent")
    files.put("model.bin", b"old" * 500_000)
    files.give(files.path("model.bin"))
    with (
        pytest.raises(RuntimeError, match="killed"),
        atomic_file(files.path("model.bin"), files.spares, 10) as f,
    ):
        f.write(b"half")
        raise RuntimeError("killed")
    assert not files.path("model.bin").exists()
    assert [p.name for p in files.dir.iterdir()] == [".spares"]  # no temporary file stays


def test_link_or_copy_copies_where_no_link_can_be_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _file(tmp_path / "a", os.urandom(3 << 20))

    def no_link(src: object, dst: object, **kwargs: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    link_or_copy(source, tmp_path / "b")
    assert sha256_bytes((tmp_path / "b").read_bytes()) == sha256_bytes(source.read_bytes())
    assert (tmp_path / "b").stat().st_ino != source.stat().st_ino


def test_a_file_written_over_a_spare_is_its_owners_only(tmp_path: Path) -> None:
    pool = Spares(tmp_path / ".spares")
    spare = _file(tmp_path / "fetched.bin", b"x" * 1000)
    spare.chmod(0o644)
    pool.give(spare)
    with new_file(tmp_path / "update.bin", pool, 1000) as f:
        f.write(b"not revealed yet")
    assert (tmp_path / "update.bin").stat().st_mode & 0o777 == 0o600


def test_a_link_an_empty_file_or_a_folder_entry_is_never_kept(tmp_path: Path) -> None:
    pool = Spares(tmp_path / ".spares")
    target = _file(tmp_path / "store-blob", b"served bytes")
    (tmp_path / "symlink").symlink_to(target)
    pool.give(tmp_path / "symlink")
    pool.give(_file(tmp_path / "empty", b""))
    assert not (tmp_path / "symlink").exists() and not (tmp_path / "empty").exists()
    assert target.read_bytes() == b"served bytes"  # followed nowhere
    assert not pool.take(tmp_path / "got", 1)


def test_writes_killed_midway_become_spares_and_a_finished_task_clears_them(tmp_path: Path) -> None:
    folder = tmp_path / "agent"
    folder.mkdir()
    _file(folder / ".update-3.bin.k2j3h4", b"half an update")  # as a killed write left it
    files = StateDir(folder)
    assert not (folder / ".update-3.bin.k2j3h4").exists()
    assert len(list(files.spares.folder.iterdir())) == 1
    files.spares.clear()
    assert not files.spares.folder.exists()
