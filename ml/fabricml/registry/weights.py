"""Model weights digests, computed the way OpenSSF model-signing does.

Every regular file under the model directory gets a SHA-256 (paths relative, in
POSIX form, sorted); the root digest is the SHA-256 of the concatenated raw file
digests in that order. A model-signing signature of the same directory carries the
same root digest as its subject, so a signature and our record name the same bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from .digests import sha256_file

# model-signing leaves these out by default.
IGNORED = {".git", ".gitattributes", ".github", ".gitignore"}


@dataclass(frozen=True)
class FileDigest:
    name: str
    digest: str


@dataclass(frozen=True)
class WeightsManifest:
    files: tuple[FileDigest, ...]

    @property
    def digest(self) -> str:
        h = hashlib.sha256()
        for f in self.files:
            h.update(bytes.fromhex(f.digest))
        return h.hexdigest()

    def to_json(self) -> dict[str, object]:
        return {
            "algorithm": "sha256",
            "digest": self.digest,
            "files": [{"name": f.name, "digest": f.digest} for f in self.files],
        }

    @classmethod
    def from_json(cls, raw: dict[str, object]) -> WeightsManifest:
        files = raw.get("files")
        if not isinstance(files, list):
            raise ValueError("weights.files must be a list of {name, digest}")
        manifest = cls(tuple(FileDigest(str(f["name"]), str(f["digest"])) for f in files))
        if manifest.digest != raw.get("digest"):
            raise ValueError("weights.digest does not match its files")
        return manifest

    def compare(self, other: WeightsManifest) -> list[str]:
        """Human-readable differences, file by file; empty when identical."""
        mine = {f.name: f.digest for f in self.files}
        theirs = {f.name: f.digest for f in other.files}
        problems = []
        for name in sorted(mine.keys() | theirs.keys()):
            if name not in theirs:
                problems.append(f"{name}: registered but missing here")
            elif name not in mine:
                problems.append(f"{name}: present here but not registered")
            elif mine[name] != theirs[name]:
                problems.append(
                    f"{name}: sha256 {theirs[name][:16]}… differs from registered {mine[name][:16]}…"
                )
        return problems


def hash_model(model_dir: Path) -> WeightsManifest:
    """Digest every file under model_dir; symlinks are refused, as model-signing does."""
    root = Path(model_dir)
    if not root.is_dir():
        raise ValueError(f"{root} is not a directory")
    files = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] in IGNORED:
            continue
        if path.is_symlink():
            raise ValueError(f"{rel} is a symbolic link; model directories must hold regular files")
        if path.is_file():
            files.append(FileDigest(rel.as_posix(), sha256_file(path)))
    if not files:
        raise ValueError(f"{root} holds no files")
    return WeightsManifest(tuple(sorted(files, key=lambda f: f.name)))
