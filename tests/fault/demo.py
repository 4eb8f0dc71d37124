"""`fabricml fed demo` run as a user runs it, in its own process group, watched through
an org's auditor: shared by tests/fault and bench/fault_matrix.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fabricml.gateway import EvaluateError
from fabricml.network.network import Network
from tests.fault.invariants import Auditor
from tests.fault.nodes import FABRICML


@dataclass
class Demo:
    """`fabricml fed demo` in its own process group, its output in a file."""

    net: Network
    task: str
    proc: subprocess.Popen[bytes]
    output: Path

    def finish(self, timeout: float) -> dict[str, Any]:
        """Wait for the demo; its JSON summary, or a failure with its output and agents' logs."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"the demo did not finish within {timeout:.0f}s\n{self.logs()}") from None
        if code != 0:
            raise AssertionError(f"the demo exited with {code}\n{self.logs()}")
        text = self.output.read_text()
        return dict(json.loads(text[text.index("{") :]))

    def stop(self) -> None:
        """Kill the demo and its agents (one process group) if they still run."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def logs(self) -> str:
        parts = [f"--- demo\n{self.output.read_text()[-4000:]}"]
        for log in sorted((self.net.layout.root / "federated" / self.task).glob("agent-*.log")):
            parts.append(f"--- {log.name}\n{log.read_text()[-3000:]}")
        return "\n".join(parts)


def start_demo(net: Network, rounds: int = 2, *extra: str) -> Demo:
    """The demo with one participant per org, few rounds and a small model: as short as a
    federated task on the real network gets."""
    task = f"fault-{uuid.uuid4().hex[:6]}"
    output = net.layout.root / f"demo-{task}.out"
    argv = [
        *FABRICML, "fed", "demo", "--topology", str(net.topology.source), "--state-dir", str(net.layout.root),
        "--rounds", str(rounds), "--epochs", "1", "--dataset", "breast_cancer", "--no-serve",
        "--task", task, "--json", *extra,
    ]  # fmt: skip
    with output.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return Demo(net, task, proc, output)


def wait_for_task(
    auditor: Auditor,
    demo: Demo,
    ready: Callable[[dict[str, Any]], bool],
    timeout: float = 600,
    interval: float = 0.2,
) -> dict[str, Any]:
    """Poll the task (through org3) every `interval` s until `ready`; fails at once if the demo died."""
    end, last = time.monotonic() + timeout, "no answer yet"
    while time.monotonic() < end:
        if demo.proc.poll() is not None:
            raise AssertionError(f"the demo exited with {demo.proc.returncode} early\n{demo.logs()}")
        try:
            task: dict[str, Any] = auditor.call("Federation", "GetTask", demo.task)
        except EvaluateError as exc:  # the demo has not created it yet
            last = str(exc)
        else:
            if ready(task):
                return task
            last = f"round {task['round']} {task['phase']}, {len(task['participants'])} participants"
        time.sleep(interval)
    raise AssertionError(f"task {demo.task}: still {last} after {timeout:.0f}s\n{demo.logs()}")
