"""Peak resident memory of other processes, sampled from /proc while they run: VmHWM is the
kernel's own high-water mark, so a sample taken any time before a process exits is exact."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

Match = Callable[[int, str, int], bool]  # (pid, command line, session id) -> watched?


def _read(pid: Path) -> tuple[str, int, int] | None:
    try:
        cmdline = (pid / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        session = int((pid / "stat").read_text().rsplit(")", 1)[1].split()[3])
        hwm = next(
            int(x.split()[1]) for x in (pid / "status").read_text().splitlines() if x.startswith("VmHWM:")
        )
    except (OSError, StopIteration, ValueError, IndexError):
        return None  # gone, or a kernel thread
    return cmdline, session, hwm


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
                if not entry.name.isdigit():
                    continue
                found = _read(entry)
                if found and self.match(int(entry.name), found[0], found[1]):
                    old = self.peaks.get(int(entry.name), ("", 0.0))[1]
                    self.peaks[int(entry.name)] = (found[0], max(old, found[2] / 1024))

    def close(self) -> dict[int, tuple[str, float]]:
        self._stop.set()
        self._thread.join(timeout=10)
        return self.peaks
