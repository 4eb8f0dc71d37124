"""Site files as Kubernetes objects: a folder or file of the site becomes one Secret (keys) or one
ConfigMap (public material); each file a key, mounted back at its path by `items`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MAX_OBJECT_BYTES = 1 << 20  # Kubernetes refuses a Secret or ConfigMap over 1 MiB
# In the CA's home, what its server does not need: the registrars' keys and the bring-up secrets.
CA_SEED_EXCLUDE = ("caadmin", "registrar", "tls-registrar", "ops-registrar", "secrets.json")


class FileSetError(ValueError):
    """Site files cannot become a Secret or ConfigMap; the message names the path."""


@dataclass(frozen=True)
class FileSet:
    """The files under `path` (relative to the site root), each under a Kubernetes key."""

    name: str  # the object's name
    path: str
    files: dict[str, str]  # key -> path relative to `path` ("" when `path` is the file itself)
    sources: dict[str, Path]  # key -> the file on the host

    def items(self) -> list[dict[str, str]]:
        return [{"key": k, "path": rel} for k, rel in sorted(self.files.items()) if rel]

    @property
    def is_file(self) -> bool:
        return list(self.files.values()) == [""]


def object_name(org: str, path: str, suffix: str = "") -> str:
    """A DNS-1123 name for a site path: org1 + identities/peer0 -> org1-identities-peer0."""
    slug = re.sub(r"[^a-z0-9]+", "-", f"{org}-{path}{suffix}".lower()).strip("-")
    return slug[:253].rstrip("-")


def _key(rel: str) -> str:
    return re.sub(r"[^-._a-zA-Z0-9]", ".", rel)


def fileset(org: str, root: Path, path: str, exclude: tuple[str, ...] = (), suffix: str = "") -> FileSet:
    """The files under root/path (symbolic links and `exclude`d top-level entries left out)."""
    base = root / path
    if not base.exists():
        raise FileSetError(f"{base} does not exist; is the site initialized (and joined, for its view)?")
    if base.is_file():
        return FileSet(object_name(org, path, suffix), path, {_key(base.name): ""}, {_key(base.name): base})
    files: dict[str, str] = {}
    sources: dict[str, Path] = {}
    for p in sorted(base.rglob("*")):
        rel = p.relative_to(base)
        if p.is_symlink() or not p.is_file() or rel.parts[0] in exclude:
            continue
        key = _key(str(rel))
        if key in files:
            raise FileSetError(f"{base}: {files[key]} and {rel} would share the key {key}")
        files[key], sources[key] = str(rel), p
    size = sum(s.stat().st_size for s in sources.values()) * 4 // 3  # base64 in the object
    if size > MAX_OBJECT_BYTES:
        raise FileSetError(f"{base} holds {size} bytes once encoded; a Kubernetes object allows 1 MiB")
    return FileSet(object_name(org, path, suffix), path, files, sources)


def refuse_private_keys(fs: FileSet) -> None:
    """Public files go into the chart itself: a private key among them must never get there."""
    for src in sorted(fs.sources.values()):
        if b"PRIVATE KEY" in src.read_bytes():
            raise FileSetError(
                f"{src} holds a private key but lies in {fs.path}, which the chart carries "
                "as public; move the key out of it"
            )
