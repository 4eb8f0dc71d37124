"""A site's process table: start long-lived processes detached, record their pids, stop exactly those."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcessRecord:
    name: str
    pid: int
    executable: str
    log: str


# The processes this Python process started, kept so that subprocess never reaps one in
# the background (it reaps dropped Popen objects) and `exit_status` can still say why it ended.
_children: dict[int, subprocess.Popen[bytes]] = {}


def exit_status(pid: int, wait: float = 0.0) -> int | None:
    """How a process this Python process started ended (Popen.returncode: negative for a
    signal), waiting up to `wait` seconds for it to end; None if it still runs or was not
    started here."""
    proc = _children.get(pid)
    if proc is None:
        return None
    try:
        return proc.wait(wait)
    except subprocess.TimeoutExpired:
        return None


class ProcessTable:
    """The processes a network started, persisted so `down` works from another shell."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def records(self) -> dict[str, ProcessRecord]:
        if not self.path.exists():
            return {}
        raw = json.loads(self.path.read_text())
        return {name: ProcessRecord(**rec) for name, rec in raw.items()}

    def _save(self, records: Mapping[str, ProcessRecord]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({n: asdict(r) for n, r in sorted(records.items())}, indent=2))
        tmp.replace(self.path)

    def start(
        self, name: str, argv: list[str], env: Mapping[str, str], log: Path, cwd: Path | None = None
    ) -> ProcessRecord:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            out.write(f"\n=== fabricml: starting {name} at {time.strftime('%Y-%m-%dT%H:%M:%S')}\n".encode())
            out.flush()
            proc = subprocess.Popen(
                argv,
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _children[proc.pid] = proc
        record = ProcessRecord(name, proc.pid, os.path.realpath(argv[0]), str(log))
        records = self.records()
        records[name] = record
        self._save(records)
        return record

    def alive(self, name: str) -> bool:
        record = self.records().get(name)
        return record is not None and _is_running(record)

    def running(self) -> dict[str, ProcessRecord]:
        return {n: r for n, r in self.records().items() if _is_running(r)}

    def stop(self, name: str, grace: float = 10.0) -> bool:
        """Stop one recorded process; True if it was running. The record goes first, so a
        watcher that sees the process end knows it was stopped on purpose."""
        records = self.records()
        record = records.pop(name, None)
        self._save(records)
        was_running = record is not None and _is_running(record)
        if record is not None and was_running:
            _terminate(record, grace)
        return was_running

    def stop_all(self, grace: float = 10.0) -> list[str]:
        """Stop every recorded process, newest first, and return the names that were running."""
        stopped = []
        for name in reversed(list(self.records())):
            if self.stop(name, grace):
                stopped.append(name)
        return stopped


def _is_running(record: ProcessRecord) -> bool:
    # Compare the executable so a recycled pid is never mistaken for our process.
    try:
        exe = os.readlink(f"/proc/{record.pid}/exe")
    except OSError:
        return False
    with open(f"/proc/{record.pid}/stat") as f:
        if f.read().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return exe.removesuffix(" (deleted)") == record.executable


def _terminate(record: ProcessRecord, grace: float) -> None:
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(record.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _reap(record.pid)
            if not _is_running(record):
                return
            time.sleep(0.1)


def _reap(pid: int) -> None:
    # Only our own children can be reaped; others are reaped by their parent.
    proc = _children.get(pid)
    if proc is not None:
        proc.poll()
        return
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when `host:port` cannot be bound (someone listens there, or the address is foreign)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def http_ok(url: str, timeout: float = 2.0, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def wait_until(check: Callable[[], object], timeout: float, interval: float = 0.25) -> bool:
    """Poll until check() is truthy or the timeout passes."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
