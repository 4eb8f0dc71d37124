"""Serves an org's artifact store to consortium members over mutual TLS.

Reads need a client certificate from any member org's CA; writes need one from this
org's own CA, and the body must hash to the name it is written under. A certificate its
CA revoked is refused at each connection and each request (the members' revocation
lists are re-read when they change; a CA with no readable list gets its identities a 503).

No outsider or single org can make the store unreachable for others: the accept loop
only accepts; each TLS handshake runs on its own with a deadline; connections that have
not authenticated yet are capped per address and in all (the oldest is dropped, so a
new one always gets its turn); each member org has its own connection slots, and a queue
for more (parked, not refused into a storm of new handshakes); request heads must arrive
within a deadline and bodies move at a minimum rate. Blobs stream from and to files in
chunks, with `Range: bytes=N-` so that fetches can resume.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
import resource
import socket
import ssl
import time
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from .artifact_http import BadRequest, Pace, PeerTooSlow, Request, head_bytes, read_head, receive, send
from .artifacts import ArtifactError, ArtifactStore
from .crl import RevocationFiles, RevocationUnknown
from .digests import sha256_file

MAX_BLOB_BYTES = 2 << 30  # a 100M-parameter update as int64 (800 MB), with room to spare
CHUNK = 256 << 10
BLOB_PATH = re.compile(r"^/v1/blobs/([0-9a-f]{64})$")
log = logging.getLogger("fabricml.artifacts")


@dataclass(frozen=True)
class ServerLimits:
    handshake_seconds: float = 5.0  # a TLS handshake must be done by then
    pending: int = 512  # connections not yet authenticated, in all ...
    pending_per_address: int = 256  # ... and from one IP address; beyond, its oldest is dropped
    connections_per_org: int = 32  # authenticated connections of one member org served at once ...
    waiting_per_org: int = 224  # ... and waiting for one of those slots, up to wait_seconds
    wait_seconds: float = 10.0
    head_seconds: float = 10.0  # a request's line and headers must arrive within this
    idle_seconds: float = 15.0  # a kept-alive connection may wait this long for its next request
    max_head_bytes: int = 16 << 10
    min_bytes_per_second: int = 64 << 10  # bodies, in and out, after the grace period
    grace_seconds: float = 10.0
    max_blob_bytes: int = MAX_BLOB_BYTES

    @property
    def pace(self) -> Pace:
        return Pace(self.min_bytes_per_second, self.grace_seconds)


def issued_by(cert_der: bytes, ca: x509.Certificate) -> bool:
    try:
        x509.load_der_x509_certificate(cert_der).verify_directly_issued_by(ca)
    except (InvalidSignature, TypeError, ValueError):
        return False
    return True


class Admission:
    """Who holds which connection slots. Unauthenticated connections are kept in age
    order, so that under pressure the oldest (a silent or slow peer's) is dropped."""

    def __init__(self, limits: ServerLimits) -> None:
        self.limits = limits
        self.pending: OrderedDict[asyncio.Task[None], str] = OrderedDict()
        self.per_address: Counter[str] = Counter()
        self.per_org: Counter[str] = Counter()
        self.waiting: dict[str, deque[asyncio.Future[None]]] = {}

    def arrive(self, task: asyncio.Task[None], address: str) -> None:
        self.pending[task] = address
        self.per_address[address] += 1
        if self.per_address[address] > self.limits.pending_per_address:
            self._drop(next(t for t, a in self.pending.items() if a == address))
        if len(self.pending) > self.limits.pending:
            self._drop(next(iter(self.pending)))

    def _drop(self, task: asyncio.Task[None]) -> None:
        log.info("dropping %s: too many connections waiting to authenticate", self.pending[task])
        self.authenticated(task)
        task.cancel()

    def authenticated(self, task: asyncio.Task[None]) -> None:
        address = self.pending.pop(task, None)
        if address is not None:
            self.per_address[address] -= 1
            if not self.per_address[address]:
                del self.per_address[address]

    async def enter(self, org: str) -> bool:
        """A slot among the org's connections: at once, or after waiting in its queue (so
        that an org's extra connections are parked, not refused into a reconnect storm of
        handshakes); False when its queue is full too or no slot came in time."""
        if self.per_org[org] < self.limits.connections_per_org:
            self.per_org[org] += 1
            return True
        queue = self.waiting.setdefault(org, deque())
        if len(queue) >= self.limits.waiting_per_org:
            return False
        turn = asyncio.get_running_loop().create_future()
        queue.append(turn)
        try:
            await asyncio.wait_for(asyncio.shield(turn), self.limits.wait_seconds)
        except TimeoutError:
            pass
        except asyncio.CancelledError:
            if turn.done():
                self.leave(org)  # pass on the slot this connection will never use
            raise
        finally:
            if turn in queue:
                queue.remove(turn)
        return turn.done()  # a slot handed over just as the wait ended is still taken

    def leave(self, org: str) -> None:
        """Hand the slot to the org's next waiting connection, else free it."""
        queue = self.waiting.get(org)
        while queue:
            turn = queue.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self.per_org[org] -= 1


@dataclass(frozen=True)
class Peer:
    address: str
    org: str  # the member CA that issued its certificate (its subject)
    cert: bytes


class ArtifactServer:
    def __init__(
        self, store: ArtifactStore, address: tuple[str, int], cert: Path, key: Path, member_cas: list[Path],
        own_ca: Path, revocation_lists: list[Path], limits: ServerLimits | None = None,
    ) -> None:  # fmt: skip
        self.store, self.address = store, address
        self.limits = limits or ServerLimits()
        self.own_ca = x509.load_pem_x509_certificate(Path(own_ca).read_bytes())
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.minimum_version = ssl.TLSVersion.TLSv1_2
        self.tls.verify_mode = ssl.CERT_REQUIRED
        self.tls.load_cert_chain(cert, key)
        self.member_cas = [x509.load_pem_x509_certificate(Path(ca).read_bytes()) for ca in member_cas]
        for ca in member_cas:
            self.tls.load_verify_locations(cafile=str(ca))
        self.revocations = RevocationFiles(revocation_lists, self.member_cas)
        self.admission = Admission(self.limits)
        self._verified: dict[str, tuple[int, int, int]] = {}  # digest -> (inode, size, mtime) hashed
        self._hashing: dict[str, asyncio.Lock] = {}

    def serve_forever(self) -> None:
        asyncio.run(self.serve())

    async def serve(self) -> None:
        listener = socket.create_server(self.address, backlog=1024)
        listener.setblocking(False)
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[None]] = set()
        while True:
            try:
                sock, addr = await loop.sock_accept(listener)
            except OSError as exc:  # out of descriptors: make room, then go on accepting
                log.warning("accept failed: %s", exc)
                if self.admission.pending:
                    self.admission._drop(next(iter(self.admission.pending)))
                await asyncio.sleep(0.05)
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # asyncio skips proto-0 sockets
            task = asyncio.create_task(self._connection(sock, addr[0]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            self.admission.arrive(task, addr[0])

    async def _connection(self, sock: socket.socket, address: str) -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=self.limits.max_head_bytes)
        try:
            transport, protocol = await asyncio.wait_for(
                loop.connect_accepted_socket(
                    lambda: asyncio.StreamReaderProtocol(reader), sock, ssl=self.tls,
                    ssl_handshake_timeout=self.limits.handshake_seconds,
                ),
                self.limits.handshake_seconds + 1,
            )  # fmt: skip
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            log.debug("%s: no TLS session: %s", address, exc)
            sock.close()
            return
        except asyncio.CancelledError:  # dropped to make room for newer connections
            sock.close()
            raise
        finally:
            self.admission.authenticated(task)
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        try:
            await self._authenticated(reader, writer, address)
        except (OSError, PeerTooSlow, ssl.SSLError) as exc:
            log.info("%s: connection dropped: %s", address, exc)
        except Exception:  # a bug must cost one connection, never the server
            log.exception("%s: connection failed", address)
        finally:
            transport.abort()

    async def _authenticated(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, address: str
    ) -> None:
        cert = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        org = self._member_of(cert)
        if org is None:  # e.g. through an intermediate CA, which would name as many orgs as it likes
            log.info("%s: refused: certificate not issued directly by a member CA", address)
            await self._reply(
                writer, HTTPStatus.FORBIDDEN, b"certificate must come from a member CA\n", close=True
            )
            return
        refused = self._revocation_refusal(cert)
        if refused is not None:
            log.info("%s %s: refused: %s", address, org, refused[1].decode().strip())
            await self._reply(writer, *refused, close=True)
            return
        peer = Peer(address, org, cert)
        if not await self.admission.enter(peer.org):
            log.info("%s: refused: %s holds all its connection slots and queue", address, peer.org)
            busy = b"your organization holds all its connections: retry later\n"
            await self._reply(
                writer, HTTPStatus.SERVICE_UNAVAILABLE, busy, close=True, headers={"Retry-After": "2"}
            )
            return
        try:
            await self._session(reader, writer, peer)
        finally:
            self.admission.leave(peer.org)

    def _revocation_refusal(self, cert_der: bytes) -> tuple[HTTPStatus, bytes] | None:
        """403 for a certificate its CA revoked, 503 while no list of its CA can be read."""
        try:
            if self.revocations.is_revoked(x509.load_der_x509_certificate(cert_der)):
                return HTTPStatus.FORBIDDEN, b"certificate revoked by its CA\n"
        except RevocationUnknown as exc:
            return HTTPStatus.SERVICE_UNAVAILABLE, f"cannot check revocations now: {exc}\n".encode()
        return None

    def _member_of(self, cert_der: bytes) -> str | None:
        """The member CA (its subject) that issued the certificate directly; else None."""
        issuer = x509.load_der_x509_certificate(cert_der).issuer
        for ca in self.member_cas:
            if ca.subject == issuer and issued_by(cert_der, ca):
                return ca.subject.rfc4514_string()
        return None

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: Peer) -> None:
        timeout = self.limits.head_seconds
        while True:
            try:
                request = await read_head(reader, timeout)
                if request is None:
                    return
                refused = self._revocation_refusal(peer.cert)  # revoked since the connection opened
                if refused is not None:
                    await self._reply(writer, *refused, close=True)
                    return
                keep = await self._handle(request, reader, writer, peer)
            except BadRequest as exc:
                log.info("%s %s: refused %d: %s", peer.address, peer.org, exc.status, str(exc).strip())
                await self._reply(writer, exc.status, str(exc).encode(), close=True)
                return
            if not keep:
                return
            timeout = self.limits.idle_seconds

    async def _reply(
        self, writer: asyncio.StreamWriter, status: HTTPStatus, body: bytes = b"", *, close: bool = False,
        headers: dict[str, str] | None = None, send_body: bool = True,
    ) -> None:  # fmt: skip
        head = {"Content-Type": "text/plain", "Content-Length": str(len(body)), **(headers or {})}
        if close:
            head["Connection"] = "close"
        data = head_bytes(status, head) + (body if send_body else b"")
        await send(writer, data, self.limits.pace, time.monotonic(), 0)

    async def _handle(
        self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: Peer
    ) -> bool:
        """Answer one request; False when the connection must close after it."""
        started = time.monotonic()
        m = BLOB_PATH.match(request.target)
        if m is None:
            raise BadRequest(HTTPStatus.BAD_REQUEST, "path must be /v1/blobs/<64 lowercase hex sha256>\n")
        if request.method in ("GET", "HEAD"):
            status, size = await self._get(request, writer, m.group(1))
        elif request.method == "PUT":
            status, size = await self._put(request, reader, writer, peer, m.group(1))
        else:
            raise BadRequest(HTTPStatus.METHOD_NOT_ALLOWED, "methods: GET, HEAD, PUT\n")
        log.info(
            "%s %s %s %s -> %d (%d bytes, %.3f s)", peer.address, peer.org, request.method, request.target,
            status, size, time.monotonic() - started,
        )  # fmt: skip
        return request.keep_alive

    async def _get(self, request: Request, writer: asyncio.StreamWriter, digest: str) -> tuple[int, int]:
        send_body = request.method == "GET"
        path = self.store.path(digest)
        if not await self._intact(digest):
            await self._reply(writer, HTTPStatus.NOT_FOUND, b"no such blob\n", send_body=send_body)
            return HTTPStatus.NOT_FOUND, 0
        size = path.stat().st_size
        try:
            span = request.byte_range(size)
        except BadRequest as exc:
            headers = {"Content-Range": f"bytes */{size}"}
            await self._reply(writer, exc.status, str(exc).encode(), headers=headers, send_body=send_body)
            return exc.status, 0
        first, last = span or (0, size - 1)
        headers = {
            "Content-Type": "application/octet-stream", "Content-Length": str(last - first + 1),
            "Accept-Ranges": "bytes", "ETag": f'"{digest}"',
        }  # fmt: skip
        status = HTTPStatus.PARTIAL_CONTENT if span else HTTPStatus.OK
        if span:
            headers["Content-Range"] = f"bytes {first}-{last}/{size}"
        started = time.monotonic()
        await send(writer, head_bytes(status, headers), self.limits.pace, started, 0)
        if not send_body:
            return status, 0
        sent = 0
        with path.open("rb") as f:
            f.seek(first)
            while sent < last - first + 1:
                chunk = f.read(min(CHUNK, last - first + 1 - sent))
                if not chunk:
                    raise OSError(f"blob {digest} shrank while being served")
                await send(writer, chunk, self.limits.pace, started, sent)
                sent += len(chunk)
        return status, sent

    async def _intact(self, digest: str) -> bool:
        """Whether the stored blob hashes to its name (hashed once per version of the file)."""
        path = self.store.path(digest)
        try:
            st = path.stat()
        except FileNotFoundError:
            return False
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        async with self._hashing.setdefault(digest, asyncio.Lock()):
            if self._verified.get(digest) != stamp:
                if await asyncio.to_thread(sha256_file, path) != digest:
                    log.error("blob %s in %s is corrupt: not served", digest, self.store.root)
                    return False
                self._verified[digest] = stamp
        return True

    async def _put(
        self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: Peer,
        digest: str,
    ) -> tuple[int, int]:  # fmt: skip
        if not issued_by(peer.cert, self.own_ca):  # refused before its body is read: then closed
            raise BadRequest(HTTPStatus.FORBIDDEN, "only this organization's identities may write\n")
        length = request.content_length(self.limits.max_blob_bytes)
        started, pace = time.monotonic(), self.limits.pace
        with self.store.incoming() as blob:
            while blob.size < length:
                blob.write(await receive(reader, min(CHUNK, length - blob.size), pace, started, blob.size))
            try:
                blob.commit(digest)
                st = self.store.path(digest).stat()
                self._verified[digest] = (st.st_ino, st.st_size, st.st_mtime_ns)  # hashed on the way in
            except ArtifactError:
                await self._reply(writer, HTTPStatus.BAD_REQUEST, b"body does not hash to the blob name\n")
                return HTTPStatus.BAD_REQUEST, length
        await self._reply(writer, HTTPStatus.CREATED)
        return HTTPStatus.CREATED, length


def _more_descriptors() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, required=True, help="artifact store directory")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", type=Path, required=True, help="server TLS certificate")
    parser.add_argument("--key", type=Path, required=True, help="server TLS private key")
    parser.add_argument("--own-ca", type=Path, required=True, help="this org's CA: its identities may write")
    parser.add_argument("--member-ca", type=Path, action="append", required=True, help="a member org's CA")
    parser.add_argument(
        "--crl", type=Path, action="append", required=True,
        help="a member CA's revocation list (PEM), re-read when it changes; one per --member-ca, in order",
    )  # fmt: skip
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    _more_descriptors()
    server = ArtifactServer(
        ArtifactStore(args.root), (args.host, args.port), args.cert, args.key, args.member_ca, args.own_ca,
        args.crl,
    )  # fmt: skip
    log.info("serving %s on https://%s:%d (mutual TLS)", args.root, args.host, args.port)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
