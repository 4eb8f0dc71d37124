"""Fabric and Fabric CA binaries, built from the Go module proxy into a versioned cache."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

# The one place where the Fabric versions are pinned.
FABRIC_VERSION = "3.1.1"
# Fabric's go.mod has no /v3 suffix, so its tags are not module versions: pin the
# tag's commit as a pseudo-version. (v3.1.5 is not served by the module proxy here.)
FABRIC_MODULE = "github.com/hyperledger/fabric"
FABRIC_PSEUDO_VERSION = "v1.4.0-rc1.0.20250510200036-435a7f1a780a"
FABRIC_CA_VERSION = "1.5.21"
FABRIC_CA_MODULE = "github.com/hyperledger/fabric-ca"

FABRIC_COMMANDS = ("peer", "orderer", "configtxgen", "osnadmin", "configtxlator")
CA_COMMANDS = ("fabric-ca-server", "fabric-ca-client")
BUILDER_PHASES = ("detect", "build", "release")

REPO_ROOT = Path(__file__).resolve().parents[3]
CCBUILDER_SOURCE = REPO_ROOT / "network" / "ccbuilder"


class BuildError(RuntimeError):
    """A build step failed; the message names the step and its log file."""


def cache_root() -> Path:
    return Path(os.environ.get("FABRICML_CACHE", Path.home() / ".cache" / "fabricml"))


@dataclass(frozen=True)
class Binaries:
    """Where the pinned binaries and Fabric's sample configuration live."""

    root: Path

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def sampleconfig(self) -> Path:
        return self.root / "sampleconfig"

    @property
    def builder(self) -> Path:
        """Directory with bin/detect, bin/build and bin/release for core.yaml."""
        return self.root / "ccbuilder"

    def path(self, command: str) -> Path:
        return self.bin / command

    def complete(self) -> bool:
        wanted = [self.path(c) for c in FABRIC_COMMANDS + CA_COMMANDS]
        wanted += [self.builder / "bin" / p for p in BUILDER_PHASES]
        wanted.append(self.sampleconfig / "core.yaml")
        return all(p.exists() for p in wanted)


def default_binaries() -> Binaries:
    return Binaries(cache_root() / f"fabric-{FABRIC_VERSION}-ca-{FABRIC_CA_VERSION}")


BuildStep = tuple[str, Path, list[str], dict[str, str]]


def _build_steps(binaries: Binaries, fabric_mod: Path, ca_mod: Path) -> list[BuildStep]:
    out = str(binaries.bin) + "/"
    return [
        (
            f"download Fabric {FABRIC_VERSION} modules",
            fabric_mod,
            ["go", "mod", "download", "-x", FABRIC_MODULE],
            {},
        ),
        (
            f"build Fabric {FABRIC_VERSION} (peer, orderer, tools)",
            fabric_mod,
            ["go", "build", "-trimpath", "-o", out, *[f"{FABRIC_MODULE}/cmd/{c}" for c in FABRIC_COMMANDS]],
            {},
        ),
        (
            f"build Fabric CA {FABRIC_CA_VERSION}",
            ca_mod,
            ["go", "build", "-trimpath", "-o", out, *[f"{FABRIC_CA_MODULE}/cmd/{c}" for c in CA_COMMANDS]],
            {"CGO_ENABLED": "1"},
        ),
        (
            "build the chaincode-as-a-service builder",
            CCBUILDER_SOURCE,
            ["go", "build", "-trimpath", "-o", str(binaries.builder / "bin" / "ccbuilder"), "."],
            {},
        ),
    ]


def ensure(console: Console | None = None, binaries: Binaries | None = None) -> Binaries:
    """Build every binary the network needs unless the cache already holds this version."""
    console = console or Console(stderr=True)
    binaries = binaries or default_binaries()
    if binaries.complete():
        return binaries
    if shutil.which("go") is None:
        raise BuildError("step 'find go': the go command is not on PATH; install Go >= 1.24 to build Fabric")
    work = binaries.root / "build"
    logs = binaries.root / "logs"
    for d in (binaries.bin, work, logs):
        d.mkdir(parents=True, exist_ok=True)
    fabric_mod = _wrapper_module(work / "fabric", FABRIC_MODULE, FABRIC_PSEUDO_VERSION, "1.24.2")
    ca_mod = _wrapper_module(work / "fabric-ca", FABRIC_CA_MODULE, f"v{FABRIC_CA_VERSION}", "1.25.0")
    steps = _build_steps(binaries, fabric_mod, ca_mod)
    for i, (title, cwd, argv, extra_env) in enumerate(steps, 1):
        log = logs / f"{i:02d}-{argv[1]}-{cwd.name}.log"
        with console.status(f"[{i}/{len(steps)}] {title} (log: {log})"):
            _run_step(title, argv, cwd, log, extra_env)
        console.print(f"[green]✓[/] [{i}/{len(steps)}] {title}")
    for phase in BUILDER_PHASES:
        link = binaries.builder / "bin" / phase
        link.unlink(missing_ok=True)
        link.symlink_to("ccbuilder")
    _copy_sampleconfig(fabric_mod, binaries.sampleconfig)
    return binaries


def _wrapper_module(path: Path, module: str, version: str, go_version: str) -> Path:
    """A throwaway module that requires the pinned version; `go install pkg@ver` is
    refused here because it asks the proxy for the module's version list."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "go.mod").write_text(
        f"module fabricml.local/build\n\ngo {go_version}\n\nrequire {module} {version}\n"
    )
    return path


def _run_step(title: str, argv: list[str], cwd: Path, log: Path, extra_env: dict[str, str]) -> None:
    env = {**os.environ, "GOFLAGS": "-mod=mod", **extra_env}
    with log.open("w") as out:
        result = subprocess.run(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-8:])
        raise BuildError(f"step '{title}' failed (exit {result.returncode}); log: {log}\n{tail}")


def _copy_sampleconfig(fabric_mod: Path, dest: Path) -> None:
    out = subprocess.run(
        ["go", "list", "-m", "-f", "{{.Dir}}", FABRIC_MODULE],
        cwd=fabric_mod,
        env={**os.environ, "GOFLAGS": "-mod=mod"},
        capture_output=True,
        text=True,
        check=True,
    )
    src = Path(out.stdout.strip()) / "sampleconfig"
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest)
    # Files in the module cache are read-only; the copies are edited per node.
    for p in dest.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)


def install_shared(binaries: Binaries, install_dir: Path) -> Binaries:
    """Copy the binaries to install_dir/<version>/, readable and runnable by every user and
    writable by none: sites run by other Unix users use it with FABRICML_CACHE=install_dir
    (a home directory such as /root is private, so its cache is not theirs to run)."""
    if not binaries.complete():
        raise BuildError(f"step 'install': {binaries.root} is incomplete; run `fabricml network build`")
    target = Binaries(install_dir / binaries.root.name)
    if target.complete():
        return target
    staging = install_dir / f".{binaries.root.name}.partial"
    if staging.exists():
        shutil.rmtree(staging)
    for part in ("bin", "sampleconfig", "ccbuilder"):
        shutil.copytree(binaries.root / part, staging / part, symlinks=True)
    share_read_only(staging)
    staging.replace(target.root)
    share_read_only(install_dir, recursive=False)
    return target


def share_read_only(root: Path, recursive: bool = True) -> None:
    """Directories 0755, executables 0755, other files 0644 (symlinks untouched)."""
    paths = [root, *root.rglob("*")] if recursive else [root]
    for p in paths:
        if p.is_symlink():
            continue
        if p.is_dir():
            p.chmod(0o755)
        else:
            p.chmod(0o755 if p.stat().st_mode & 0o100 else 0o644)
