"""The demo's agent processes: one `fabricml agent run` per participant, each with its own
log; a dead one is noticed at the next look, named, and its log's tail shown; it is started
again (it resumes from its state directory) while the fleet has restarts left."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from fabricml.network.network import Network

TAIL_LINES = 15


class DemoError(RuntimeError):
    """The demo cannot finish; the message says why and where to look."""


class AgentDied(DemoError):
    """An agent process failed (exited non-zero or was killed)."""


class AgentsEnded(AgentDied):
    """Every agent process ended, each without failing: fine once the task is done."""


def cli_command(net: Network, *args: str) -> list[str]:
    """The `fabricml` CLI on this network, run by this Python."""
    network = ["--topology", str(net.topology.source), "--state-dir", str(net.layout.root)]
    return [sys.executable, "-m", "fabricml.cli", *args, *network]


@dataclass(frozen=True)
class AgentLaunch:
    """What one participant's agent is started with."""

    org: str
    identity: str
    task: str
    data: Path
    epochs: int
    lr: float
    seed: int
    extra: Sequence[str] = ()  # more `fabricml agent run` options, e.g. --fedprox-mu 0.1

    @property
    def name(self) -> str:
        return f"{self.org}/{self.identity}"

    def command(self, net: Network) -> list[str]:
        options = {
            "--org": self.org,
            "--identity": self.identity,
            "--task": self.task,
            "--data": str(self.data),
            "--epochs": str(self.epochs),
            "--lr": str(self.lr),
            "--seed": str(self.seed),
        }
        return cli_command(net, "agent", "run", *(x for kv in options.items() for x in kv), *self.extra)


@dataclass
class _Running:
    launch: AgentLaunch
    log: Path
    process: subprocess.Popen[bytes]


def _exit_text(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with {code}"


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last lines of a log, indented (the whole file is never printed)."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"    (no log: {exc})"
    return "\n".join(f"    {line}" for line in text.splitlines()[-lines:]) or "    (the log is empty)"


class AgentFleet:
    """Starts, watches and stops the agents of one task; leaving the block stops them all."""

    def __init__(
        self, net: Network, folder: Path, restarts: int = 0, log: Callable[[str], None] = print
    ) -> None:
        self.net, self.folder = net, folder
        self.running: list[_Running] = []
        self.restarts_left, self.log = restarts, log

    def start(self, launch: AgentLaunch) -> None:
        log = self.folder / f"agent-{launch.org}-{launch.identity}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(launch.command(self.net), stdout=out, stderr=subprocess.STDOUT)
        self.running.append(_Running(launch, log, process))

    def check(self) -> None:
        """AgentDied when an agent failed and no restart is left; AgentsEnded when every
        agent has ended."""
        failed = [r for r in self.running if r.process.poll() not in (None, 0)]
        if failed and len(failed) <= self.restarts_left:
            for r in failed:
                self._restart(r)
            failed = []
        if failed:
            raise AgentDied(self._obituary(failed))
        if self.running and all(r.process.poll() is not None for r in self.running):
            raise AgentsEnded(self._obituary(self.running))

    def wait(self, timeout: float) -> None:
        """Wait for every agent to finish; raise AgentDied naming any that failed."""
        for r in self.running:
            try:
                r.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                raise DemoError(
                    f"agent {r.launch.name} is still running {timeout:.0f}s after the task ended; see {r.log}"
                ) from None
        failed = [r for r in self.running if r.process.returncode != 0]
        if failed:
            raise AgentDied(self._obituary(failed))

    def _restart(self, r: _Running) -> None:
        """The same command again, its output after the old one's: the agent resumes from
        its state directory in whatever phase it died."""
        self.restarts_left -= 1
        code = r.process.returncode
        self.log(
            f"agent {r.launch.name} {_exit_text(code)}; started again ({self.restarts_left} restarts left)"
        )
        with r.log.open("ab") as out:
            out.write(f"--- the demo started this agent again after it {_exit_text(code)}\n".encode())
            out.flush()
            r.process = subprocess.Popen(r.launch.command(self.net), stdout=out, stderr=subprocess.STDOUT)

    def _obituary(self, ended: list[_Running]) -> str:
        parts = []
        for r in ended:
            code = r.process.poll()
            state = "is still running" if code is None else _exit_text(code)
            parts.append(f"agent {r.launch.name} {state}; the end of {r.log}:\n{tail(r.log)}")
        return "\n".join(parts)

    def stop(self) -> None:
        """Terminate the agents still running (SIGTERM, then SIGKILL after 30 s)."""
        for r in self.running:
            if r.process.poll() is None:
                r.process.terminate()
        for r in self.running:
            try:
                r.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                r.process.kill()
                r.process.wait()

    def __enter__(self) -> AgentFleet:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
