"""Writing generated deployment files: directories 0700 and files 0600, like the site they come from."""

from __future__ import annotations

from pathlib import Path


def private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def write_private(path: Path, text: str, mode: int = 0o600) -> Path:
    private_dir(path.parent)
    path.touch(mode)
    path.chmod(mode)
    path.write_text(text)
    return path


def inside(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())
