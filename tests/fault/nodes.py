"""Crash faults on a running network: kill -9 a node by the pid its site's supervisor
recorded, restart it with `fabricml network start-node`, and find the current Raft leader."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

from fabricml.network import operations
from fabricml.network.network import Network
from fabricml.network.processes import wait_until
from fabricml.network.supervisor import Supervisor
from tests.conftest import network_options

FABRICML = [sys.executable, "-m", "fabricml.cli"]
PAUSE = 10.0  # seconds a killed node stays down, as in the issue


def supervisor(net: Network, name: str) -> Supervisor:
    """The supervisor of the site that runs node `name`."""
    return net.site(net.node(name).org).supervisor


def kill(net: Network, name: str) -> int:
    """SIGKILL one recorded node (no chance to clean up); returns its pid."""
    sup = supervisor(net, name)
    record = sup.table.records().get(name)
    if record is None or not sup.alive(name):
        raise AssertionError(f"{name} is not running, so it cannot be killed")
    os.kill(record.pid, signal.SIGKILL)
    if not wait_until(lambda: not sup.alive(name), 10):
        raise AssertionError(f"{name} (pid {record.pid}) still runs after SIGKILL")
    return record.pid


def restart(net: Network, name: str) -> None:
    """Start a killed node again, as an operator would, and wait until it is healthy."""
    where = network_options(net)
    result = subprocess.run(
        [*FABRICML, "network", "start-node", name, *where], capture_output=True, text=True, timeout=180
    )
    if result.returncode != 0:
        raise AssertionError(f"restarting {name} failed:\n{result.stdout}\n{result.stderr}")


def raft_leader(net: Network, timeout: float = 30) -> str:
    """The orderer that leads the channel's Raft cluster (from its operations metrics)."""
    pattern = re.compile(
        rf'^consensus_etcdraft_is_leader{{channel="{re.escape(net.topology.channel)}"}} 1', re.MULTILINE
    )
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for o in net.topology.orderers:
            ctx = operations.site_context(net.layout.site(o.org))
            if pattern.search(operations.fetch(f"{o.host}:{o.operations_port}", "/metrics", ctx) or ""):
                return o.name
        time.sleep(0.5)
    raise AssertionError(f"no Raft leader of {net.topology.channel} within {timeout}s")


def node_kinds(net: Network) -> dict[str, str]:
    """Every node's kind (ca, orderer, peer, chaincode, artifacts, api), by name."""
    return {n.name: n.kind for n in net.nodes()}


def not_running(net: Network) -> list[str]:
    """Nodes of the network whose site's supervisor does not see them running."""
    return [n.name for n in net.nodes() if not supervisor(net, n.name).alive(n.name)]


def wait_for_revocation_lists(net: Network, timeout: float = 180) -> float | None:
    """Until every site holds every member's revocation list (its artifact store refuses,
    fail-closed, every identity of a CA it has no list of): the seconds it took, or None
    if some list was still missing after `timeout`. `network up` returns before the other
    members' lists have reached a site."""
    started = time.monotonic()
    orgs = [o.name for o in net.topology.organizations]

    def complete() -> bool:
        return all((net.site(s).layout.revocations / f"{o}.crl.pem").exists() for s in orgs for o in orgs)

    return time.monotonic() - started if wait_until(complete, timeout) else None
