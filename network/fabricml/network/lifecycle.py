"""Fabric's chaincode lifecycle as one site's admin: install, approve, commit, and the
state queries (queryinstalled, checkcommitreadiness, querycommitted) that say what is done."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .bundle import SiteBundle
from .peercli import AdminTools, FabricCommandError, json_tail, until_done


class Lifecycle:
    def __init__(self, tools: AdminTools, chaincode: str) -> None:
        self.tools = tools
        self.name = chaincode

    def _peer(self, *args: str, timeout: float = 120) -> str:
        return self.tools.peer("lifecycle", "chaincode", *args, timeout=timeout)

    def committed(self) -> dict[str, Any] | None:
        """The committed definition of our chaincode, or None before the first commit."""
        out = self._peer("querycommitted", "--channelID", self.tools.channel, "-O", "json")
        for d in json_tail(out).get("chaincode_definitions") or []:
            if d.get("name") == self.name:
                return dict(d)
        return None

    def committed_approvals(self) -> dict[str, bool]:
        """Which orgs approved the committed definition (querycommitted --name, once committed)."""
        out = self._peer(
            "querycommitted", "--channelID", self.tools.channel, "--name", self.name, "-O", "json"
        )
        return {str(k): bool(v) for k, v in (json_tail(out).get("approvals") or {}).items()}

    def committed_quietly(self) -> dict[str, Any] | None:
        try:
            return self.committed()
        except FabricCommandError:
            return None

    def installed(self) -> set[str]:
        out = self._peer("queryinstalled", "-O", "json")
        return {c["package_id"] for c in json_tail(out).get("installed_chaincodes") or []}

    def install(self, pkg: Path, package_id: str) -> None:
        if package_id not in self.installed():
            self._peer("install", str(pkg), timeout=300)

    def approvals(self, version: str, sequence: int) -> dict[str, bool]:
        """Which orgs approved exactly this definition (Fabric's checkcommitreadiness)."""
        out = self._peer("checkcommitreadiness", "--channelID", self.tools.channel, "--name", self.name,
                         "--version", version, "--sequence", str(sequence), "-O", "json")  # fmt: skip
        return {str(k): bool(v) for k, v in (json_tail(out).get("approvals") or {}).items()}

    def _approved(self, version: str, sequence: int) -> bool:
        own = self.tools.org.msp_id
        try:
            committed = self.committed()
            if committed is not None and int(committed["sequence"]) == sequence:
                return self.committed_approvals().get(own, False)  # a member catching up
            return self.approvals(version, sequence).get(own, False)
        except FabricCommandError:
            return False

    def approve(self, version: str, package_id: str, sequence: int, timeout: float = 300) -> None:
        """Approve for this org (retried until the ordering service has it, e.g. while
        the other consenters are still joining)."""
        args = ["approveformyorg", *self.tools.orderer_args(), "--channelID", self.tools.channel,
                "--name", self.name, "--version", version, "--package-id", package_id,
                "--sequence", str(sequence), "--waitForEventTimeout", "60s"]  # fmt: skip
        until_done(
            lambda: self._approved(version, sequence),
            lambda: self._peer(*args),
            f"{self.tools.org.name}'s approval of {self.name} {version} (sequence {sequence})",
            timeout,
        )

    def commit(self, version: str, sequence: int, endorsers: list[SiteBundle]) -> None:
        """Commit the definition, endorsed by the given members' peers."""

        def done() -> bool:
            d = self.committed_quietly()
            return d is not None and int(d["sequence"]) >= sequence

        args = ["commit", *self.tools.orderer_args(), "--channelID", self.tools.channel, "--name", self.name,
                "--version", version, "--sequence", str(sequence),
                *self.tools.peer_target_args(endorsers), "--waitForEventTimeout", "60s"]  # fmt: skip
        until_done(
            done, lambda: self._peer(*args), f"the commit of {self.name} {version} (sequence {sequence})"
        )
