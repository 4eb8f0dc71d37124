"""A content-addressed artifact store: blobs named by their SHA-256, in a local directory."""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from .digests import CHUNK, check_digest, sha256_file
from .spares import link_or_copy

if TYPE_CHECKING:  # the artifact server stays light: no jsonschema or numpy at import
    from .manifest import ProvenanceManifest


class ArtifactError(RuntimeError):
    """A blob is missing or its bytes do not match its digest."""


class IncomingBlob:
    """Bytes on their way into the store: written to a temporary file and hashed as they
    arrive, kept under their name only if they hash to it, so no blob is ever held in
    memory whole and no partial or mismatched blob is ever visible."""

    def __init__(self, store: ArtifactStore) -> None:
        self.store = store
        store.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=store.root, prefix=".incoming-")
        self._file = os.fdopen(fd, "wb")
        self._tmp = Path(tmp)
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        self._file.write(chunk)
        self._hash.update(chunk)
        self.size += len(chunk)

    @property
    def digest(self) -> str:
        return self._hash.hexdigest()

    def commit(self, expected: str | None = None) -> str:
        """Keep the blob under its digest; refuse (and discard it) if that is not `expected`."""
        self._file.close()
        digest = self.digest
        if expected is not None and digest != expected:
            self.discard()
            raise ArtifactError(f"the bytes hash to {digest}, not to the blob name {expected}")
        if self.store.has(digest):
            self.discard()
            return digest
        dest = self.store.path(digest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._tmp, dest)
        return digest

    def discard(self) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> IncomingBlob:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._tmp.exists():  # not committed: nothing of it stays
            self.discard()


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

    def incoming(self) -> IncomingBlob:
        return IncomingBlob(self)

    def put_bytes(self, data: bytes) -> str:
        with self.incoming() as blob:
            blob.write(data)
            return blob.commit()

    def put_file(self, path: Path, link: bool = False) -> str:
        """Store a file's bytes; `link`: as a hard link to it where the filesystem allows
        (no page written; fabricml.registry.spares), for files nothing writes over in
        place afterwards (the project replaces its own files by renaming)."""
        if link:
            return self._put_link(Path(path))
        with self.incoming() as blob, Path(path).open("rb") as src:
            while chunk := src.read(CHUNK):
                blob.write(chunk)
            return blob.commit()

    def _put_link(self, path: Path) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".incoming-{uuid.uuid4().hex}"  # os.link makes it, or fails
        link_or_copy(path, tmp)
        try:
            os.chmod(tmp, 0o600)  # as every blob (and the caller's file, the same inode)
            digest = sha256_file(tmp)  # of the linked bytes: what the store will serve
            dest = self.path(digest)
            if dest.is_file():
                return digest
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, dest)
            return digest
        finally:
            tmp.unlink(missing_ok=True)

    def get(self, digest: str) -> bytes:
        """The blob's bytes, checked against its name; a mismatch is never returned."""
        path = self.path(digest)
        if not path.is_file():
            raise ArtifactError(f"blob {digest} is not in the artifact store {self.root}")
        data = path.read_bytes()
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise ArtifactError(f"blob {digest} in {self.root} is corrupt: its bytes hash to {actual}")
        return data

    def verify(self, digest: str) -> bool:
        return self.has(digest) and sha256_file(self.path(digest)) == digest

    def put_model(self, model_dir: Path, manifest: ProvenanceManifest, link: bool = False) -> str:
        """Store every weights file (`link`: as in put_file) and the manifest itself;
        returns the manifest digest."""
        for f in manifest.weights.files:
            if self.put_file(Path(model_dir) / f.name, link) != f.digest:
                raise ArtifactError(f"{f.name} changed after the manifest was built")
        return self.put_bytes(manifest.raw)
