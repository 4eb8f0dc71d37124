"""Our Go chaincode as a service: the server binary and the CCaaS package a site installs."""

from __future__ import annotations

import fcntl
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

from .binaries import REPO_ROOT, BuildError, cache_root
from .nodeconfig import CONNECTION_TEMPLATE

CHAINCODE_SOURCE = REPO_ROOT / "chaincode"
VERSION_SYMBOL = "github.com/fabricml/fabricml/chaincode/consortium.Version"
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,31}$")


@dataclass(frozen=True)
class Deployment:
    """The chaincode this site's server runs: version, sequence, package and binary."""

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


def check_version(version: str) -> str:
    if not _VERSION.match(version):
        raise ValueError(f"chaincode version {version!r}: use letters, digits, '.', '+', '_', '-' (up to 32)")
    return version


def source_digest(source: Path = CHAINCODE_SOURCE) -> str:
    """sha256 over the chaincode's Go sources and module files, to key built servers."""
    h = hashlib.sha256()
    for p in sorted(source.rglob("*")):
        if p.is_file() and (p.suffix == ".go" or p.name in ("go.mod", "go.sum")):
            h.update(str(p.relative_to(source)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def build_key() -> str:
    """What a built server depends on besides its version: the sources, and the Go flags of
    this environment (GOFLAGS, e.g. -tags=conformance for a server with the test contract)."""
    flags = os.environ.get("GOFLAGS", "").strip()
    if not flags:
        return source_digest()[:16]
    return hashlib.sha256(f"{source_digest()}\0{flags}".encode()).hexdigest()[:16]


def server_binary(version: str, fallback_dir: Path) -> Path:
    """The chaincode server for `version` built from this source tree, built once and kept in
    the shared cache (which may be a read-only install other users' sites run from); when the
    cache is not writable, the site builds its own copy in `fallback_dir`."""
    key = f"{check_version(version)}-{build_key()}"
    cached = cache_root() / "chaincode" / key / "fabricml-chaincode"
    if cached.exists():
        return cached
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        writable = os.access(cached.parent, os.W_OK)
    except OSError:
        writable = False
    if not writable:
        return build_server(version, fallback_dir / key)
    return build_server(version, cached.parent)


def build_server(version: str, out_dir: Path) -> Path:
    """Compile the chaincode server with its version stamped in, once: sites joining in
    parallel (threads or processes) wait for the first one's build and share it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    binary = out_dir / "fabricml-chaincode"
    with (out_dir / ".build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not binary.exists():
            _compile(version, out_dir, binary)
    return binary


def _compile(version: str, out_dir: Path, binary: Path) -> None:
    log = out_dir / "build.log"
    tmp = out_dir / f".fabricml-chaincode.{os.getpid()}.partial"
    argv = ["go", "build", "-trimpath", "-ldflags", f"-X {VERSION_SYMBOL}={version}", "-o", str(tmp),
            "./cmd/fabricml-chaincode"]  # fmt: skip
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
    tmp.replace(binary)


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
        {"metadata.json": json.dumps({"label": label, "type": "ccaas"}).encode(), "code.tar.gz": code}
    )


def package_id_for(label: str) -> str:
    """Fabric's package ID, label:sha256(package); the same label always gives the same ID."""
    return f"{label}:{hashlib.sha256(package_bytes(label)).hexdigest()}"


def package(label: str, out: Path) -> str:
    """Write the package file (each site builds its own: the bytes, and so the ID, agree)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(package_bytes(label))
    return package_id_for(label)
