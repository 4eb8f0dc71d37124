"""Our Go chaincode as a service: build, package once, install, approve, commit, upgrade."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from .binaries import REPO_ROOT, BuildError
from .configgen import CONNECTION_TEMPLATE
from .peercli import AdminTools, FabricCommandError, retry_transient
from .topology import Organization

CHAINCODE_SOURCE = REPO_ROOT / "chaincode"
VERSION_SYMBOL = "github.com/fabricml/fabricml/chaincode/consortium.Version"


@dataclass(frozen=True)
class Deployment:
    """What is committed on the channel and which package each org's server runs."""

    version: str
    sequence: int
    package_id: str
    binary: str

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, sort_keys=True)

    @classmethod
    def load(cls, path: Path) -> Deployment | None:
        if not path.exists():
            return None
        return cls(**json.loads(path.read_text()))


def build_server(version: str, out_dir: Path) -> Path:
    """Compile the chaincode server with its version stamped in."""
    out_dir.mkdir(parents=True, exist_ok=True)
    binary = out_dir / "fabricml-chaincode"
    log = out_dir / "build.log"
    argv = [
        "go",
        "build",
        "-trimpath",
        "-ldflags",
        f"-X {VERSION_SYMBOL}={version}",
        "-o",
        str(binary),
        "./cmd/fabricml-chaincode",
    ]
    with log.open("w") as out:
        rc = subprocess.run(
            argv,
            cwd=CHAINCODE_SOURCE,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "CGO_ENABLED": "0"},
        ).returncode
    if rc != 0:
        raise BuildError(f"step 'build chaincode {version}' failed (exit {rc}); log: {log}")
    return binary


def _tar_bytes(files: dict[str, bytes]) -> bytes:
    """A gzipped tar with fixed metadata, so the same inputs give the same package ID."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def package_bytes(label: str) -> bytes:
    """The CCaaS package: metadata.json plus code.tar.gz holding the connection template."""
    if not re.fullmatch(r"[A-Za-z0-9_.+-]+", label):
        raise ValueError(f"chaincode label {label!r} may only hold letters, digits and _ . + -")
    code = _tar_bytes({"connection.json": json.dumps(CONNECTION_TEMPLATE, sort_keys=True).encode()})
    return _tar_bytes(
        {
            "metadata.json": json.dumps({"label": label, "type": "ccaas"}).encode(),
            "code.tar.gz": code,
        }
    )


def package_id_for(label: str) -> str:
    """Fabric's package ID, label:sha256(package); the same label always gives the same ID."""
    return f"{label}:{hashlib.sha256(package_bytes(label)).hexdigest()}"


def package(label: str, out: Path) -> str:
    """Write the package file once; every peer installs this same file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(package_bytes(label))
    return package_id_for(label)


class Lifecycle:
    """Fabric's chaincode lifecycle, driven with the official `peer` CLI as each org's admin."""

    def __init__(self, tools: AdminTools) -> None:
        self.tools = tools
        self.topo = tools.topology

    def committed(self, org: Organization) -> dict[str, object] | None:
        try:
            out = self.tools.peer(
                org,
                "lifecycle",
                "chaincode",
                "querycommitted",
                "--channelID",
                self.topo.channel,
                "--name",
                self.topo.chaincode_name,
                "-O",
                "json",
            )
        except FabricCommandError as exc:
            if "not defined" in str(exc) or "not found" in str(exc):
                return None
            raise
        return dict(json.loads(out[out.index("{") :]))

    def install(self, org: Organization, pkg: Path) -> None:
        try:
            self.tools.peer(org, "lifecycle", "chaincode", "install", str(pkg), timeout=300)
        except FabricCommandError as exc:
            if "already successfully installed" not in str(exc):
                raise

    def approve(self, org: Organization, version: str, package_id: str, sequence: int) -> None:
        args = [
            "lifecycle",
            "chaincode",
            "approveformyorg",
            *self.tools.orderer_args(org),
            "--channelID",
            self.topo.channel,
            "--name",
            self.topo.chaincode_name,
            "--version",
            version,
            "--package-id",
            package_id,
            "--sequence",
            str(sequence),
            "--waitForEventTimeout",
            "60s",
        ]
        retry_transient(lambda: self.tools.peer(org, *args))

    def commit(self, version: str, sequence: int) -> None:
        org = self.topo.organizations[0]
        args = [
            "lifecycle",
            "chaincode",
            "commit",
            *self.tools.orderer_args(org),
            "--channelID",
            self.topo.channel,
            "--name",
            self.topo.chaincode_name,
            "--version",
            version,
            "--sequence",
            str(sequence),
            *self.tools.peer_target_args(self.topo.organizations),
            "--waitForEventTimeout",
            "60s",
        ]
        retry_transient(lambda: self.tools.peer(org, *args))
