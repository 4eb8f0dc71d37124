"""Helm, built from the Go module proxy into the shared cache, for validating the chart offline."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from rich.console import Console

from ..binaries import BuildError, cache_root

HELM_VERSION = "3.22.0"
HELM_MODULE = "helm.sh/helm/v3"
GO_VERSION = "1.25.0"


def helm_path() -> Path:
    return cache_root() / f"helm-v{HELM_VERSION}" / "bin" / "helm"


def ensure_helm(console: Console | None = None) -> Path:
    """The helm binary of the pinned version, built once (`go install pkg@v` is refused here:
    it asks the proxy for the module's version list, so we build from a throwaway module)."""
    console = console or Console(stderr=True)
    helm = helm_path()
    if helm.exists():
        return helm
    if shutil.which("go") is None:
        raise BuildError("step 'find go': the go command is not on PATH; install Go >= 1.24 to build Helm")
    root = helm.parents[1]
    work, logs = root / "build", root / "logs"
    for d in (work, logs, helm.parent):
        d.mkdir(parents=True, exist_ok=True)
    (work / "go.mod").write_text(
        f"module fabricml.local/helm\n\ngo {GO_VERSION}\n\nrequire {HELM_MODULE} v{HELM_VERSION}\n"
    )
    log = logs / "build.log"
    started = time.monotonic()
    with console.status(f"build Helm {HELM_VERSION} from the Go module proxy (log: {log})"):
        _run(["go", "get", f"{HELM_MODULE}@v{HELM_VERSION}"], work, log)
        partial = helm.with_suffix(".partial")
        _run(["go", "build", "-trimpath", "-o", str(partial), f"{HELM_MODULE}/cmd/helm"], work, log)
        partial.replace(helm)
    console.print(f"[green]✓[/] Helm {HELM_VERSION} built in {time.monotonic() - started:.0f}s: {helm}")
    return helm


def _run(argv: list[str], cwd: Path, log: Path) -> None:
    env = {**os.environ, "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}
    with log.open("a") as out:
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        rc = subprocess.run(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        tail = "\n".join(log.read_text().splitlines()[-8:])
        raise BuildError(f"step '{' '.join(argv[:2])} helm' failed (exit {rc}); log: {log}\n{tail}")


if __name__ == "__main__":
    print(ensure_helm())
