"""The little HTTP/1.1 the artifact server speaks, over asyncio streams, with deadlines:
a request head must arrive in time and a body must move at a minimum rate, so that a
slow or silent peer holds a connection only briefly and never blocks anyone else."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from http import HTTPStatus

RANGE = re.compile(r"^bytes=(\d{1,19})-(\d{0,19})$")


class PeerTooSlow(Exception):
    """The peer did not send or take bytes fast enough; its connection is dropped."""


class BadRequest(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Pace:
    """A transfer must finish within grace + bytes / min_rate seconds of its start."""

    min_bytes_per_second: int
    grace_seconds: float

    def timeout(self, started: float, done: int) -> float:
        left = started + self.grace_seconds + done / self.min_bytes_per_second - time.monotonic()
        if left <= 0:
            raise PeerTooSlow(f"moved {done} bytes, slower than {self.min_bytes_per_second} B/s")
        return left


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def keep_alive(self) -> bool:
        return self.headers.get("connection", "").lower() != "close"

    def content_length(self, limit: int) -> int:
        if "transfer-encoding" in self.headers:
            raise BadRequest(HTTPStatus.LENGTH_REQUIRED, "send the body with a Content-Length\n")
        raw = self.headers.get("content-length", "")
        if not raw.isdigit() or int(raw) > limit:
            raise BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body must be 0 to {limit} bytes\n")
        return int(raw)

    def byte_range(self, size: int) -> tuple[int, int] | None:
        """(first, last) byte asked for by `Range: bytes=N-` or `bytes=N-M`; None: all."""
        raw = self.headers.get("range")
        if raw is None:
            return None
        m = RANGE.match(raw.strip())
        if m is None:
            raise BadRequest(
                HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, "only Range: bytes=N- or bytes=N-M\n"
            )
        first, last = int(m.group(1)), int(m.group(2)) if m.group(2) else size - 1
        if first >= size or last < first:
            raise BadRequest(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, f"the blob has {size} bytes\n")
        return first, min(last, size - 1)


def parse_head(raw: bytes) -> Request:
    try:
        lines = raw.decode("ascii").split("\r\n")
    except UnicodeDecodeError:
        raise BadRequest(HTTPStatus.BAD_REQUEST, "request head must be ASCII\n") from None
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[2] not in ("HTTP/1.1", "HTTP/1.0"):
        raise BadRequest(HTTPStatus.BAD_REQUEST, "request line must be METHOD /path HTTP/1.1\n")
    request = Request(parts[0], parts[1])
    if parts[2] == "HTTP/1.0":
        request.headers["connection"] = "close"
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        key = name.strip().lower()
        if not sep or not key or (key in request.headers and key in ("content-length", "range")):
            raise BadRequest(HTTPStatus.BAD_REQUEST, f"malformed or repeated header {name!r}\n")
        request.headers[key] = value.strip()
    return request


async def read_head(reader: asyncio.StreamReader, timeout: float) -> Request | None:
    """The next request's head, or None if the peer closed the connection between requests."""
    try:
        raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise BadRequest(HTTPStatus.BAD_REQUEST, "connection closed inside a request head\n") from None
        return None
    except asyncio.LimitOverrunError:
        raise BadRequest(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "request head too large\n") from None
    except TimeoutError:
        raise PeerTooSlow(f"no complete request head within {timeout:.0f} s") from None
    return parse_head(raw[:-4])


def head_bytes(status: HTTPStatus, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status.value} {status.phrase}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


async def send(writer: asyncio.StreamWriter, data: bytes, pace: Pace, started: float, done: int) -> None:
    """Write and wait until the peer has taken it, at the minimum rate or it is dropped."""
    writer.write(data)
    try:
        await asyncio.wait_for(writer.drain(), pace.timeout(started, done))
    except TimeoutError:
        raise PeerTooSlow(f"peer took {done} bytes, slower than {pace.min_bytes_per_second} B/s") from None


async def receive(reader: asyncio.StreamReader, want: int, pace: Pace, started: float, done: int) -> bytes:
    try:
        chunk = await asyncio.wait_for(reader.read(want), pace.timeout(started, done))
    except TimeoutError:
        raise PeerTooSlow(f"peer sent {done} bytes, slower than {pace.min_bytes_per_second} B/s") from None
    if not chunk:
        raise ConnectionError(f"peer closed the connection after {done} bytes of the body")
    return chunk
