"""What a manifest records automatically: the code's commit and the training environment."""

from __future__ import annotations

import platform
import re
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


# A repository others can reach: a network URL, or git's scp-like "user@host:path".
_REMOTE_URL = re.compile(r"^((https?|ssh|git)://[^/\s]+/\S+|[\w.-]+@[\w.-]+:\S+)$")


def code_commit(cwd: Path) -> dict[str, Any]:
    """Repository URL, commit id and whether the work tree had uncommitted changes. The
    repository is recorded only when it is a URL other members can reach; otherwise the
    manifest says why it is empty."""
    commit = _git(cwd, "rev-parse", "HEAD")
    if commit is None:
        return {"repository": "", "commit": "", "dirty": False}
    dirty = bool(_git(cwd, "status", "--porcelain", "--untracked-files=no"))
    origin = _git(cwd, "remote", "get-url", "origin") or ""
    if _REMOTE_URL.match(origin) and len(origin) <= 256:
        return {"repository": origin, "commit": commit, "dirty": dirty}
    why = "origin is a local path, not a URL" if origin else "no origin remote"
    return {"repository": "", "commit": commit, "dirty": dirty, "repositoryNote": f"not recorded: {why}"}


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
