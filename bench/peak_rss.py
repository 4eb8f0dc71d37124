"""Peak resident memory of other processes, sampled from /proc while they run: VmHWM is the
kernel's own high-water mark, so a sample taken any time before a process exits is exact."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    session: int
    cmdline: str


Match = Callable[[Proc], bool]  # watched?


def _read(entry: Path) -> tuple[Proc, int] | None:
    """The process and its VmHWM in KiB, or None (gone, or a kernel thread)."""
    try:
        cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()  # state, ppid, pgrp, session
        status = (entry / "status").read_text().splitlines()
        hwm = next(int(x.split()[1]) for x in status if x.startswith("VmHWM:"))
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    return Proc(int(entry.name), int(fields[1]), int(fields[3]), cmdline), hwm


class PeakRss:
    """Samples every matching process every `period` seconds until closed; peaks in MiB."""

    def __init__(self, match: Match, period: float = 0.5) -> None:
        self.match, self.period = match, period
        self.peaks: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-rss", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            for entry in Path("/proc").iterdir():
                found = _read(entry) if entry.name.isdigit() else None
                if found and self.match(found[0]):
                    proc, kib = found
                    old = self.peaks.get(proc.pid, ("", 0.0))[1]
                    self.peaks[proc.pid] = (proc.cmdline, max(old, kib / 1024))

    def close(self) -> dict[int, tuple[str, float]]:
        self._stop.set()
        self._thread.join(timeout=10)
        return self.peaks
