"""Run Fabric's own `peer` and `osnadmin` commands as an organization's admin.

Each call returns the command's standard output; failures raise with the output's tail."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from .binaries import Binaries
from .layout import Layout
from .topology import Orderer, Organization, Topology


class FabricCommandError(RuntimeError):
    """A Fabric command failed; the message has the command and its last output lines."""


@dataclass(frozen=True)
class AdminTools:
    topology: Topology
    layout: Layout
    binaries: Binaries

    def peer_env(self, org: Organization, identity: str = "admin") -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "FABRIC_CFG_PATH": str(self.layout.node_home(org.peer_name)),
            "CORE_PEER_TLS_ENABLED": "true",
            "CORE_PEER_LOCALMSPID": org.msp_id,
            "CORE_PEER_MSPCONFIGPATH": str(self.layout.msp(org, identity)),
            "CORE_PEER_ADDRESS": org.peer_address,
            "CORE_PEER_TLS_ROOTCERT_FILE": str(self.layout.ca_cert(org)),
        }

    def orderer_for(self, org: Organization) -> tuple[Orderer, Organization]:
        """An orderer to send transactions to: the org's own, else the first one."""
        if org.orderers:
            return org.orderers[0], org
        o = self.topology.orderers[0]
        return o, self.topology.org(o.org)

    def orderer_args(self, org: Organization) -> list[str]:
        o, owner = self.orderer_for(org)
        return ["-o", o.address, "--tls", "--cafile", str(self.layout.ca_cert(owner))]

    def peer_target_args(self, orgs: list[Organization]) -> list[str]:
        args: list[str] = []
        for o in orgs:
            args += ["--peerAddresses", o.peer_address, "--tlsRootCertFiles", str(self.layout.ca_cert(o))]
        return args

    def peer(self, org: Organization, *args: str, identity: str = "admin", timeout: float = 120) -> str:
        argv = [str(self.binaries.path("peer")), *args]
        return _run(argv, self.peer_env(org, identity), timeout)

    def osnadmin(self, orderer: Orderer, *args: str, timeout: float = 60) -> str:
        org = self.topology.org(orderer.org)
        tls = self.layout.tls(org, f"orderer{orderer.index}")
        argv = [
            str(self.binaries.path("osnadmin")),
            *args,
            "-o",
            f"127.0.0.1:{orderer.admin_port}",
            "--ca-file",
            str(tls / "ca.crt"),
            "--client-cert",
            str(tls / "server.crt"),
            "--client-key",
            str(tls / "server.key"),
        ]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
        return _run(argv, env, timeout)


def _run(argv: list[str], env: dict[str, str], timeout: float) -> str:
    try:
        result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise FabricCommandError(f"{' '.join(argv[:4])} timed out after {timeout:.0f}s") from None
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-6:])
        raise FabricCommandError(f"{' '.join(argv[:4])} failed (exit {result.returncode}):\n{tail}")
    return result.stdout


T = TypeVar("T")
TRANSIENT = (
    "SERVICE_UNAVAILABLE",
    "no Raft leader",
    "connection refused",
    "not yet ready",
    "failed to connect",
    "could not connect",
    "context deadline exceeded",
)


def retry_transient(call: Callable[[], T], attempts: int = 40, delay: float = 1.0) -> T:
    """Retry while ordering is briefly unavailable, e.g. while a channel elects its leader."""
    for i in range(attempts):
        try:
            return call()
        except FabricCommandError as exc:
            if not any(s in str(exc) for s in TRANSIENT) or i == attempts - 1:
                raise
            time.sleep(delay)
    raise AssertionError("unreachable")
