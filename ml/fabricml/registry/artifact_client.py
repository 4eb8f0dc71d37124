"""Fetches and uploads blobs at another org's artifact server over mutual TLS.

Fetches stream: the bytes go to a file or a callback as they arrive, hashed on the way,
and are accepted only if they hash to the digest they were asked for. A broken
connection is retried with backoff and resumed where it stopped (`Range: bytes=N-`).
"""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlparse

from .artifacts import ArtifactError
from .digests import CHUNK, check_digest, sha256_bytes, sha256_file
from .spares import Spares, new_file

MAX_FETCH_BYTES = 2 << 30  # the artifact server's MAX_BLOB_BYTES
CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")
UNSATISFIABLE = re.compile(r"^bytes \*/(\d+)$")
Progress = Callable[[int, int], None]  # (bytes so far, total bytes)


class FetchInterrupted(ArtifactError):
    """The server stayed unreachable; what arrived is kept, and a later fetch resumes it."""


class BlobRefused(ArtifactError):
    """The server answered that it will not serve the blob (e.g. 404: it holds no copy);
    the bytes a partial file holds from another member's store stay valid."""


class _Transient(Exception):
    """A failure worth retrying: the connection broke, or the server asked to come back."""


@dataclass(frozen=True)
class Retry:
    """Give up after `attempts` failures in a row without a byte of progress between them."""

    attempts: int = 8
    first_delay: float = 0.25
    max_delay: float = 4.0

    def delay(self, failures: int) -> float:
        return float(min(self.max_delay, self.first_delay * 2 ** (failures - 1)))


QUICK = Retry(attempts=3, first_delay=0.2, max_delay=1.0)


@dataclass
class FetchResult:
    digest: str
    size: int
    attempts: int = 0
    started_at: int = 0  # bytes an earlier, interrupted fetch had left in the partial file
    resumed_at: list[int] = field(default_factory=list)  # offsets at which a broken fetch went on


@dataclass
class _Transfer:
    digest: str
    consume: Callable[[bytes], Any]
    progress: Progress | None
    offset: int = 0
    total: int = -1
    hash: Any = field(default_factory=hashlib.sha256)

    def take(self, chunk: bytes) -> None:
        self.consume(chunk)
        self.hash.update(chunk)
        self.offset += len(chunk)
        if self.progress:
            self.progress(self.offset, self.total)


def _writer(out: BinaryIO, path: Path) -> Callable[[bytes], Any]:
    """out.write, whose failure (a full disk) ends the fetch instead of counting as a
    broken connection to try again."""

    def write(chunk: bytes) -> None:
        try:
            out.write(chunk)
        except OSError as exc:
            raise ArtifactError(f"writing {path}: {exc}") from exc

    return write


class ArtifactClient:
    def __init__(
        self, url: str, ca_files: list[Path], cert: Path, key: Path, timeout: float = 30.0,
        retry: Retry | None = None, max_bytes: int = MAX_FETCH_BYTES,
    ) -> None:  # fmt: skip
        parsed = urlparse(url)
        if parsed.scheme != "https" or not parsed.hostname or not parsed.port:
            raise ValueError(f"artifact server URL must be https://host:port, got {url!r}")
        self.host, self.port, self.timeout = parsed.hostname, parsed.port, timeout
        self.retry, self.max_bytes = retry or Retry(), max_bytes
        self.context = ssl.create_default_context()
        for ca in ca_files:
            self.context.load_verify_locations(cafile=str(ca))
        self.context.load_cert_chain(cert, key)

    @property
    def where(self) -> str:
        return f"artifact server {self.host}:{self.port}"

    def _connection(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=self.timeout)

    def _request(self, method: str, digest: str, body: bytes | None = None) -> tuple[int, bytes]:
        check_digest(digest)
        conn = self._connection()
        try:
            conn.request(method, f"/v1/blobs/{digest}", body=body)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def has(self, digest: str) -> bool:
        return self._request("HEAD", digest)[0] == 200

    # ---- fetching ----------------------------------------------------------------------

    def get(self, digest: str) -> bytes:
        """A (small) blob's bytes, checked against its digest. Large blobs: fetch_to.
        Retries only briefly (QUICK): its callers try other stores and retry themselves."""
        data = io.BytesIO()
        self._fetch(_Transfer(check_digest(digest), data.write, None), QUICK)
        return data.getvalue()  # no second copy: BytesIO hands over its buffer

    def stream(
        self, digest: str, consume: Callable[[bytes], Any], progress: Progress | None = None
    ) -> FetchResult:
        """Hand the blob's bytes to `consume` in order, as they arrive; raises ArtifactError
        at the end if they do not hash to `digest` (the consumer must then drop them)."""
        return self._fetch(_Transfer(check_digest(digest), consume, progress))

    def fetch_to(
        self, digest: str, dest: Path, progress: Progress | None = None, retry: Retry | None = None,
        spares: Spares | None = None, size: int = 0,
    ) -> FetchResult:  # fmt: skip
        """Stream the blob into `dest`, resuming from `dest`.partial if an earlier fetch
        stopped; `dest` appears only once the bytes hash to `digest`. `retry` (default: the
        client's) bounds the attempts of this call. `spares`: a fetch from the start writes
        over one of them (about `size` bytes expected; fabricml.registry.spares)."""
        check_digest(digest)
        dest = Path(dest)
        partial = dest.with_name(dest.name + ".partial")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if spares is not None and not partial.exists():
            return self._fetch_over(digest, dest, (progress, retry), spares, size)
        with partial.open("ab") as out:
            transfer = _Transfer(digest, _writer(out, partial), progress)
            if out.tell():  # what an earlier fetch left: hashed again, then continued
                transfer.hash = _hash_of(partial)
                transfer.offset = out.tell()
            try:
                result = self._fetch(transfer, retry)
            except (FetchInterrupted, BlobRefused):
                raise
            except ArtifactError:
                partial.unlink()  # wrong bytes or a refusal: never resume from it
                raise
        partial.replace(dest)
        return result

    def _fetch_over(
        self, digest: str, dest: Path, how: tuple[Progress | None, Retry | None], spares: Spares, size: int
    ) -> FetchResult:
        """fetch_to from the first byte over a spare, in `dest`.over (never resumed from:
        past what this call wrote it holds the spare's old bytes); a broken fetch leaves
        what it got as `dest`.partial, as fetch_to does."""
        over = dest.with_name(dest.name + ".over")
        untouched = False
        try:
            with new_file(over, spares, size) as out:
                transfer = _Transfer(digest, _writer(out, over), how[0])
                try:
                    result = self._fetch(transfer, how[1])
                except (FetchInterrupted, BlobRefused):
                    untouched = not transfer.offset
                    if not untouched:
                        out.truncate()  # the bytes fetched so far, at the position after them
                        out.flush()
                        over.replace(dest.with_name(dest.name + ".partial"))
                    raise
                out.truncate()
                out.flush()
                os.fsync(out.fileno())  # the spare's old bytes must not come back after a crash
        except BaseException:
            if untouched:
                spares.give(over)  # closed, unchanged: a spare still
            else:
                over.unlink(missing_ok=True)
            raise
        over.replace(dest)
        return result

    def _fetch(self, transfer: _Transfer, retry: Retry | None = None) -> FetchResult:
        retry = retry or self.retry
        result = FetchResult(transfer.digest, 0, started_at=transfer.offset)
        failures = 0
        while True:
            result.attempts += 1
            before = transfer.offset
            try:
                self._fetch_once(transfer)
                break
            except ssl.SSLCertVerificationError as exc:  # not this server: retrying will not help
                raise ArtifactError(f"{self.where} is not a member's artifact server: {exc}") from exc
            except (_Transient, OSError, http.client.HTTPException) as exc:
                failures = 1 if transfer.offset > before else failures + 1
                if failures >= retry.attempts:
                    raise FetchInterrupted(
                        f"{self.where}: blob {transfer.digest} stopped at byte {transfer.offset} after "
                        f"{result.attempts} attempts: {exc}"
                    ) from exc
                time.sleep(retry.delay(failures))
                result.resumed_at.append(transfer.offset)
        actual = transfer.hash.hexdigest()
        if actual != transfer.digest:
            raise ArtifactError(
                f"blob {transfer.digest} from {self.where} does not match its digest ({actual})"
            )
        result.size = transfer.offset
        return result

    def _fetch_once(self, transfer: _Transfer) -> None:
        conn = self._connection()
        try:
            headers = {"Range": f"bytes={transfer.offset}-"} if transfer.offset else {}
            conn.request("GET", f"/v1/blobs/{transfer.digest}", headers=headers)
            resp = conn.getresponse()
            if not self._expect(resp, transfer):
                return
            while transfer.offset < transfer.total:
                chunk = resp.read(min(CHUNK, transfer.total - transfer.offset))
                if not chunk:
                    raise _Transient(f"connection closed at byte {transfer.offset} of {transfer.total}")
                transfer.take(chunk)
        finally:
            conn.close()

    def _expect(self, resp: http.client.HTTPResponse, transfer: _Transfer) -> bool:
        """Check the response answers what was asked; False when nothing is left to read."""
        body = b"" if resp.status in (200, 206) else resp.read(4096)
        whole = UNSATISFIABLE.match(resp.headers.get("Content-Range", ""))
        if resp.status == 416 and whole and int(whole.group(1)) == transfer.offset:
            transfer.total = transfer.offset
            return False  # the partial copy was already whole
        if resp.status in (429, 500, 502, 503, 504):
            raise _Transient(f"{self.where} answered {resp.status}")
        if resp.status == 200 and not transfer.offset:
            total = int(resp.headers.get("Content-Length", "-1"))
        elif resp.status == 206:
            m = CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
            if m is None or int(m.group(1)) != transfer.offset:
                raise ArtifactError(f"{self.where} answered a range other than bytes={transfer.offset}-")
            total = int(m.group(3))
        else:
            raise BlobRefused(
                f"{self.where} answered {resp.status} for blob {transfer.digest}: "
                f"{body.decode(errors='replace').strip()}"
            )
        if not 0 <= total <= self.max_bytes or (transfer.total >= 0 and total != transfer.total):
            raise ArtifactError(f"{self.where} announced {total} bytes for blob {transfer.digest}")
        transfer.total = total
        return True

    # ---- uploading ---------------------------------------------------------------------

    def put(self, data: bytes) -> str:
        digest = sha256_bytes(data)
        status, body = self._request("PUT", digest, data)
        if status != 201:
            raise ArtifactError(f"upload refused ({status}): {body.decode(errors='replace').strip()}")
        return digest

    def put_file(self, path: Path) -> str:
        """Upload a file in chunks (hashed first, since the name comes before the body)."""
        digest, size = sha256_file(path), Path(path).stat().st_size
        conn = self._connection()
        try:
            conn.putrequest("PUT", f"/v1/blobs/{digest}")
            conn.putheader("Content-Length", str(size))
            conn.endheaders()
            with Path(path).open("rb") as f:
                while chunk := f.read(CHUNK):
                    conn.send(chunk)
            resp = conn.getresponse()
            status, body = resp.status, resp.read()
        finally:
            conn.close()
        if status != 201:
            raise ArtifactError(f"upload refused ({status}): {body.decode(errors='replace').strip()}")
        return digest


def _hash_of(path: Path) -> Any:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h
