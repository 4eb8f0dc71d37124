"""Run Fabric's own `peer` and `osnadmin` commands as one site's admin, with its own keys.

Each call returns the command's standard output; failures raise with the output's tail.
Whether a step is done, or must be tried again, is decided by asking Fabric for the
state (`until_done`), never by reading the wording of an error."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .binaries import Binaries
from .bundle import SiteBundle
from .layout import SiteLayout
from .members import Members
from .processes import wait_until
from .topology import Orderer, Organization


class FabricCommandError(RuntimeError):
    """A Fabric command failed; the message has the command and its last output lines."""


@dataclass(frozen=True)
class AdminTools:
    """The org admin's command line: its own peer, its own orderers, the members' endpoints."""

    org: Organization
    site: SiteLayout
    binaries: Binaries
    channel: str

    @property
    def members(self) -> Members:
        return Members(self.site)

    def for_org(self, org: Organization) -> AdminTools:
        if org.name != self.org.name:
            raise FabricCommandError(f"{self.org.name}'s site cannot act as {org.name}'s admin")
        return self

    def peer_env(self, identity: str = "admin") -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "FABRIC_CFG_PATH": str(self.site.node_home(self.org.peer_name)),
            "CORE_PEER_TLS_ENABLED": "true",
            "CORE_PEER_LOCALMSPID": self.org.msp_id,
            "CORE_PEER_MSPCONFIGPATH": str(self.site.identity_msp(identity)),
            "CORE_PEER_ADDRESS": self.org.peer_address,
            "CORE_PEER_TLS_ROOTCERT_FILE": str(self.site.tls_ca_cert),
        }

    def orderer_args(self) -> list[str]:
        """An orderer to send transactions to: the site's own, else a member's."""
        if self.org.orderers:
            return ["-o", self.org.orderers[0].address, "--tls", "--cafile", str(self.site.tls_ca_cert)]
        for member in self.members.all():
            for o in member.bundle.orderers:
                return ["-o", o.address, "--tls", "--cafile", str(self.members.tls_ca(member.bundle.name))]
        raise FabricCommandError(f"{self.org.name} runs no orderer and knows no member's orderer")

    def peer_target_args(self, bundles: list[SiteBundle]) -> list[str]:
        args: list[str] = []
        for b in bundles:
            args += [
                "--peerAddresses",
                b.peer_address,
                "--tlsRootCertFiles",
                str(self.members.tls_ca(b.name)),
            ]
        return args

    def peer(self, *args: str, identity: str = "admin", timeout: float = 120) -> str:
        return run([str(self.binaries.path("peer")), *args], self.peer_env(identity), timeout)

    def osnadmin(self, orderer: Orderer, *args: str, timeout: float = 60) -> str:
        """The orderer's admin endpoint, with mutual TLS as this site's admin (its operator certificate)."""
        argv = [
            str(self.binaries.path("osnadmin")), *args,
            "-o", f"{orderer.host}:{orderer.admin_port}",
            "--ca-file", str(self.site.tls_ca_cert),
            "--client-cert", str(self.site.operator_cert),
            "--client-key", str(self.site.operator_key),
        ]  # fmt: skip
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
        return run(argv, env, timeout)


def run(argv: list[str], env: dict[str, str], timeout: float) -> str:
    try:
        result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise FabricCommandError(f"{' '.join(argv[:4])} timed out after {timeout:.0f}s") from None
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-6:])
        raise FabricCommandError(f"{' '.join(argv[:4])} failed (exit {result.returncode}):\n{tail}")
    return result.stdout


def json_tail(out: str) -> Any:
    """The JSON object a Fabric command prints after its own status lines."""
    return json.loads(out[out.index("{") :]) if "{" in out else {}


def until_done(
    done: Callable[[], bool],
    attempt: Callable[[], object],
    what: str,
    timeout: float = 180,
    delay: float = 2,
    settle: float = 15,
) -> None:
    """Try `attempt` until `done()` says the ledger has it (e.g. while the channel's
    consenters are still joining, or a Raft leader is being elected). A command that
    succeeded is not proof: an orderer that accepted a request may still drop it (BFT
    prunes a config update validated against a config that another update replaced), so
    one that has not shown in `settle` seconds is made again."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while not done():
        try:
            attempt()
        except FabricCommandError as exc:
            last = exc
        else:
            if wait_until(done, min(settle, max(0.0, deadline - time.monotonic())), delay):
                return
            last = FabricCommandError(f"the command succeeded, yet {settle:.0f}s later had no effect")
        if time.monotonic() > deadline:
            raise FabricCommandError(f"{what} did not take effect within {timeout:.0f}s; last error: {last}")
        time.sleep(delay)
