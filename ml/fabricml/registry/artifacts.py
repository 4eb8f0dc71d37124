"""A content-addressed artifact store: blobs named by their SHA-256, in a local directory."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from .digests import CHUNK, check_digest, sha256_bytes, sha256_file

if TYPE_CHECKING:  # the artifact server stays light: no jsonschema or numpy at import
    from .manifest import ProvenanceManifest


class ArtifactError(RuntimeError):
    """A blob is missing or its bytes do not match its digest."""


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, digest: str) -> Path:
        check_digest(digest)
        return self.root / "sha256" / digest[:2] / digest

    def uri(self, digest: str) -> str:
        return self.path(digest).resolve().as_uri()

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def _commit(self, tmp: Path, digest: str) -> str:
        dest = self.path(digest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, dest)
        return digest

    def put_bytes(self, data: bytes) -> str:
        digest = sha256_bytes(data)
        if not self.has(digest):
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            self._commit(Path(tmp), digest)
        return digest

    def put_file(self, path: Path) -> str:
        digest = sha256_file(path)
        if not self.has(digest):
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
            with os.fdopen(fd, "wb") as out, Path(path).open("rb") as src:
                while chunk := src.read(CHUNK):
                    out.write(chunk)
            if sha256_file(Path(tmp)) != digest:
                Path(tmp).unlink()
                raise ArtifactError(f"{path} changed while it was being stored")
            self._commit(Path(tmp), digest)
        return digest

    def get(self, digest: str) -> bytes:
        """The blob's bytes, checked against its name; a mismatch is never returned."""
        path = self.path(digest)
        if not path.is_file():
            raise ArtifactError(f"blob {digest} is not in the artifact store {self.root}")
        data = path.read_bytes()
        if sha256_bytes(data) != digest:
            raise ArtifactError(
                f"blob {digest} in {self.root} is corrupt: its bytes hash to {sha256_bytes(data)}"
            )
        return data

    def verify(self, digest: str) -> bool:
        return self.has(digest) and sha256_file(self.path(digest)) == digest

    def put_model(self, model_dir: Path, manifest: ProvenanceManifest) -> str:
        """Store every weights file and the manifest itself; returns the manifest digest."""
        for f in manifest.weights.files:
            if self.put_file(Path(model_dir) / f.name) != f.digest:
                raise ArtifactError(f"{f.name} changed after the manifest was built")
        return self.put_bytes(manifest.raw)
