"""What a manifest records automatically: the code's commit and the training environment."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any


def _git(cwd: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def code_commit(cwd: Path) -> dict[str, Any]:
    """Repository URL, commit id and whether the work tree had uncommitted changes."""
    commit = _git(cwd, "rev-parse", "HEAD")
    if commit is None:
        return {"repository": "", "commit": "", "dirty": False}
    repository = _git(cwd, "remote", "get-url", "origin") or str(
        Path(_git(cwd, "rev-parse", "--show-toplevel") or cwd)
    )
    dirty = bool(_git(cwd, "status", "--porcelain", "--untracked-files=no"))
    return {"repository": repository, "commit": commit, "dirty": dirty}


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return ""


def environment() -> dict[str, Any]:
    """Python, platform, and torch with its CUDA device when torch is installed."""
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": f"{platform.system()}-{platform.machine()}",
        "numpy": _version("numpy"),
        "torch": _version("torch"),
        "cuda": "",
        "device": "cpu",
    }
    if env["torch"] and "torch" in sys.modules:
        torch = sys.modules["torch"]
        if torch.cuda.is_available():
            env["cuda"] = str(torch.version.cuda)
            env["device"] = torch.cuda.get_device_name(0)
    return env
