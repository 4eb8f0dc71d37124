"""`flwr run` of examples/flower against a SuperLink of the test's own, on its own port
(shifted like the network's) and in its own FLWR_HOME; and the orgs' verifiers, run as
`fabricml flower verify`. Every process is started here and stopped by its id."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from fabricml.network.network import Network

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "examples" / "flower"
BIN = Path(sys.executable).parent
SUPERLINK_PORT = 21950  # beside raft3.yaml's ports (21000 + 100 per org), shifted like them


def prepare_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("flower_prepare", APP / "prepare.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def flower_env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "FLWR_HOME": str(home),
        "FLWR_TELEMETRY_ENABLED": "0",
        "FLWR_DISABLE_UPDATE_CHECK": "1",
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",  # fabricml comes from this venv
        "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0",
        # Ray's nodes on 127.0.0.1, not the machine's outward address: services stay on loopback
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    }


def stop(proc: subprocess.Popen[Any], grace: float = 20) -> None:
    """SIGTERM to the process group it leads (started with start_new_session), then SIGKILL."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(grace)


@dataclass
class SuperLink:
    home: Path
    port: int

    def run(self, run_config: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """`flwr run examples/flower` with three supernodes training at once, to the end."""
        federation = "num-supernodes=3 client-resources-num-cpus=1 init-args-num-cpus=3"
        command = [str(BIN / "flwr"), "run", str(APP), "fabricml", "--stream"]
        command += ["--federation-config", federation, "--run-config", run_config]
        return subprocess.run(
            command, env=flower_env(self.home), capture_output=True, text=True, timeout=timeout, check=False
        )


@contextmanager
def superlink(home: Path) -> Iterator[SuperLink]:
    port = SUPERLINK_PORT + int(os.environ.get("FABRICML_TEST_PORT_SHIFT", "0"))
    home.mkdir(parents=True, exist_ok=True)
    connection = f'[superlink.fabricml]\naddress = "127.0.0.1:{port}"\ninsecure = true\n'
    (home / "config.toml").write_text(f'[superlink]\ndefault = "fabricml"\n\n{connection}')
    log = (home / "superlink.log").open("w")
    command = [str(BIN / "flower-superlink"), "--insecure", "--simulation", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--disable-runtime-dependency-installation"]
    proc = subprocess.Popen(
        command, env=flower_env(home), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while not _healthy(port):
            assert proc.poll() is None, (
                f"flower-superlink exited: {(home / 'superlink.log').read_text()[-2000:]}"
            )
            assert time.monotonic() < deadline, "flower-superlink did not come up in 60 s"
            time.sleep(0.5)
        yield SuperLink(home, port)
    finally:
        stop(proc)
        log.close()


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5).is_success
    except httpx.HTTPError:
        return False


def topology_file(network: Network) -> Path:
    """The topology file the `network` fixture brought up (tests/conftest.py `shifted`)."""
    from tests.conftest import TOPOLOGIES, shifted

    state = network.layout.root
    return shifted(TOPOLOGIES / "raft3.yaml", state.parent / f"{state.name}-topology")


@dataclass
class Verifiers:
    procs: dict[str, subprocess.Popen[str]]
    logs: dict[str, Path]

    def results(self, timeout: float = 300) -> dict[str, list[dict[str, Any]]]:
        """Each verifier's verdicts (JSON), once it ends; the log tail if it failed."""
        out = {}
        for org, proc in self.procs.items():
            stdout, _ = proc.communicate(timeout=timeout)
            log = self.logs[org].read_text()
            assert proc.returncode in (0, 1), f"verifier {org} exited {proc.returncode}:\n{log[-3000:]}"
            out[org] = json.loads(stdout) if stdout.strip() else []
        return out

    def stop(self) -> None:
        for proc in self.procs.values():
            stop(proc)


@contextmanager
def verifiers(
    network: Network, task: str, rounds: int, folder: Path, no_post: tuple[str, ...]
) -> Iterator[Verifiers]:
    """One `fabricml flower verify` per org (stopping after `rounds`); `no_post` orgs only check."""
    topology, state = topology_file(network), network.layout.root
    procs, logs = {}, {}
    folder.mkdir(parents=True, exist_ok=True)
    for org in ("org1", "org2", "org3"):
        logs[org] = folder / f"verifier-{org}.log"
        command = [sys.executable, "-m", "fabricml.cli", "flower", "verify", task, "--org", org, "--json"]
        command += ["--rounds", str(rounds), "--topology", str(topology), "--state-dir", str(state)]
        command += ["--no-post"] if org in no_post else []
        procs[org] = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=logs[org].open("w"), text=True, start_new_session=True
        )
    v = Verifiers(procs, logs)
    try:
        yield v
    finally:
        v.stop()
