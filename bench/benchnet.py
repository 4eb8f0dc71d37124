"""A throwaway consortium for one benchmark: its own name, ports and state, always torn down."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FABRICML = [sys.executable, "-m", "fabricml.cli"]  # the CLI, as the benches run it
CLI = [*FABRICML, "network"]


def topology_text(name: str, base_port: int, batch_timeout: str | None = None) -> str:
    text = (REPO / "network" / "topology.yaml").read_text()
    text = re.sub(r"(?m)^name: .*$", f"name: {name}", text)
    if batch_timeout:
        text = re.sub(r"(?m)^batchTimeout: .*$", f"batchTimeout: {batch_timeout}", text)
    return re.sub(r"(?m)^  base: \d+$", f"  base: {base_port}", text)


@contextmanager
def bench_network(name: str, base_port: int, batch_timeout: str | None = None) -> Iterator[Path]:
    """Bring up a 3-org Raft consortium; yields its state directory."""
    with network_of(name, topology_text(name, base_port, batch_timeout)) as state:
        yield state


@contextmanager
def network_of(name: str, topology_yaml: str) -> Iterator[Path]:
    """Bring up the consortium this topology describes; yields its state directory."""
    with tempfile.TemporaryDirectory(prefix=f"{name}-") as tmp:
        topology = Path(tmp) / "topology.yaml"
        topology.write_text(topology_yaml)
        where = ["--topology", str(topology), "--state-dir", str(Path(tmp) / "state")]
        try:
            subprocess.run([*CLI, "up", *where], check=True)
            yield Path(tmp) / "state"
        finally:
            subprocess.run([*CLI, "down", *where], check=False)
