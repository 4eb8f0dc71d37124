"""Shared test fixtures: the real Fabric network the integration tests run against."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from fabricml.network.network import Network
from fabricml.network.topology import load

TOPOLOGIES = Path(__file__).parent / "topologies"
FABRICML = [sys.executable, "-m", "fabricml.cli"]


def use_test_chaincode_build() -> None:
    """Networks started from here on run the chaincode's test build, which adds the
    Conformance contract: `go build` honours -tags from GOFLAGS (kept with the flags
    `go env` already holds, since the variable replaces them)."""
    flags = (
        os.environ.get("GOFLAGS")
        or subprocess.run(["go", "env", "GOFLAGS"], capture_output=True, text=True, check=True).stdout.strip()
    )
    if "-tags=conformance" not in flags.split():
        os.environ["GOFLAGS"] = f"{flags} -tags=conformance".strip()


use_test_chaincode_build()


def fabricml(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the real `fabricml` CLI, as a user would."""
    result = subprocess.run([*FABRICML, *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"fabricml {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def network_options(net: Network) -> list[str]:
    """The CLI options that point a command at this test network."""
    return ["--topology", str(net.topology.source), "--state-dir", str(net.layout.root)]


def fabric_pids(state_dir: Path) -> list[int]:
    """Processes still running whose command line or environment points into state_dir."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            cmdline = (entry / "cmdline").read_bytes()
            status = (entry / "status").read_text()
        except OSError:
            continue
        if "State:\tZ" in status:
            continue
        if str(state_dir).encode() in environ + cmdline:
            pids.append(int(entry.name))
    return pids


def shifted(topology: Path, directory: Path) -> Path:
    """The topology with its ports moved by FABRICML_TEST_PORT_SHIFT, so that two test
    runs (two checkouts, or a developer and a helper) can share one machine."""
    shift = int(os.environ.get("FABRICML_TEST_PORT_SHIFT", "0"))
    if not shift:
        return topology
    raw = yaml.safe_load(topology.read_text())
    raw["ports"]["base"] += shift
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / topology.name
    out.write_text(yaml.safe_dump(raw))
    return out


def bring_up_log(network: Network) -> str:
    """What `fabricml network up` printed when it brought this network up."""
    root = network.layout.root
    return (root.parent / f"{root.name}-up.log").read_text()


def running_network(topology: Path, state_dir: Path) -> Iterator[Network]:
    """Bring a network up with the CLI, hand it to the tests, always tear it down."""
    topology = shifted(topology, state_dir.parent / f"{state_dir.name}-topology")
    try:
        up = fabricml("network", "up", "--topology", str(topology), "--state-dir", str(state_dir))
        (state_dir.parent / f"{state_dir.name}-up.log").write_text(up.stderr)
        yield Network(load(topology), state_dir)
    finally:
        fabricml("network", "down", "--topology", str(topology), "--state-dir", str(state_dir), check=False)
        left = fabric_pids(state_dir)
        if left:
            subprocess.run(["kill", "-9", *map(str, left)], check=False)
            raise AssertionError(f"processes left behind after `network down`: {left}")


@pytest.fixture(scope="session")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    """One three-organization Raft network for the whole test run."""
    os.environ.setdefault("FABRICML_HOME", str(tmp_path_factory.mktemp("fabricml-home")))
    yield from running_network(TOPOLOGIES / "raft3.yaml", tmp_path_factory.mktemp("raft3"))
