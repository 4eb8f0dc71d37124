"""Files written over instead of anew, and blobs linked instead of copied.

The kernel's first use of a page-cache page is the expensive part of writing a large
file on the virtual machines this project runs on (their freed memory goes back to the
host): measured here, writing 90 MB into a new file took 1.1-1.3 s of system time, the
same bytes over a file whose pages are still cached 0.02 s. An agent wrote about 200 MB
a round (its update, the other orgs' updates, the new global model), so the three agents
of an 11 M-parameter task spent more CPU in the kernel than in training.

So a file whose bytes are no longer needed becomes a spare (renamed into a folder of its
own, its pages still cached), and the next large file is written over the spare that
fits it best; bytes that must stay are linked into a store instead of copied. A spare
with another link is never written over (that would change the other name's bytes):
it is only unlinked."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

SPARE_LIMIT = 8  # files kept to write over; the others are deleted


class Spares:
    """A folder of files to write over; shared by the threads of one process."""

    def __init__(self, folder: Path, limit: int = SPARE_LIMIT) -> None:
        self.folder, self.limit = folder, limit
        self._lock = threading.Lock()
        self._count = 0

    def give(self, path: Path) -> None:
        """`path`'s bytes are no longer needed: keep the file to write over, or delete it
        (when it has another link, is empty or not a plain file, or enough spares are
        kept)."""
        with self._lock:
            try:
                info = path.lstat()  # a symbolic link is removed, never followed
            except FileNotFoundError:
                return
            plain = stat.S_ISREG(info.st_mode) and info.st_nlink == 1 and info.st_size > 0
            if not plain or len(self._sizes()) >= self.limit:
                path.unlink(missing_ok=True)
                return
            self.folder.mkdir(parents=True, exist_ok=True)
            self._count += 1
            try:
                os.replace(path, self.folder / f"{os.getpid()}-{self._count}")
            except OSError:  # another filesystem: its pages are of no use here
                path.unlink(missing_ok=True)

    def take(self, dest: Path, size: int) -> bool:
        """Move the spare that best fits `size` bytes to `dest` (0: unknown); False when
        there is none. Best: the smallest as large, unless it is over twice the size (its
        tail would be cut off and freed, where a larger file could have used it); else
        the largest smaller one (its pages, then new ones); else any."""
        with self._lock:
            sizes = self._sizes()
            if not sizes:
                return False
            fits = sorted((p for p in sizes if sizes[p] >= size), key=sizes.__getitem__)
            smaller = sorted((p for p in sizes if sizes[p] < size), key=sizes.__getitem__)
            snug = fits and sizes[fits[0]] <= 2 * size
            best = fits[0] if snug or not smaller else smaller[-1]
            try:
                os.replace(best, dest)
            except OSError:
                return False
            return True

    def _sizes(self) -> dict[Path, int]:
        sizes: dict[Path, int] = {}
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.folder):
                with contextlib.suppress(FileNotFoundError):
                    info = entry.stat(follow_symlinks=False)
                    if entry.is_file(follow_symlinks=False) and info.st_nlink == 1:
                        sizes[Path(entry.path)] = info.st_size
        return sizes

    def clear(self) -> None:
        """Delete every spare (the task is done: they were only pages to write over)."""
        with self._lock:
            for spare in self._sizes():
                spare.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                self.folder.rmdir()


@contextlib.contextmanager
def new_file(path: Path, spares: Spares | None, size: int) -> Iterator[BinaryIO]:
    """`path` opened for writing from its first byte, readable by its owner only: a spare
    written over when there is one (cut to what was written at the end: call truncate()
    before an fsync), else a new file."""
    f = _over(path) if spares is not None and spares.take(path, size) else None
    with f or path.open("wb") as out:
        os.fchmod(out.fileno(), 0o600)  # a spare's mode was another file's
        yield out
        out.truncate()


def _over(path: Path) -> BinaryIO | None:
    """A spare moved to `path`, opened to write over; None (and the spare gone) if it
    cannot be."""
    try:
        return path.open("r+b")
    except OSError:
        path.unlink(missing_ok=True)
        return None


def link_or_copy(source: Path, dest: Path) -> None:
    """`dest` names the bytes of `source`: a hard link where the filesystem allows one
    (no page is written), else a copy."""
    try:
        os.link(source, dest, follow_symlinks=False)
    except OSError:
        shutil.copyfile(source, dest)
