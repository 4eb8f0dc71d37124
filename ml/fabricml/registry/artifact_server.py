"""Serves an org's artifact store to consortium members over mutual TLS.

Reads need a client certificate from any member org's CA; writes need one from this
org's own CA, and the body must hash to the name it is written under."""

from __future__ import annotations

import argparse
import logging
import re
import ssl
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from .artifacts import ArtifactError, ArtifactStore
from .digests import sha256_bytes

MAX_BLOB_BYTES = 512 << 20
BLOB_PATH = re.compile(r"^/v1/blobs/([0-9a-f]{64})$")
log = logging.getLogger("fabricml.artifacts")


def issued_by(cert_der: bytes, ca: x509.Certificate) -> bool:
    try:
        x509.load_der_x509_certificate(cert_der).verify_directly_issued_by(ca)
    except (InvalidSignature, TypeError, ValueError):
        return False
    return True


class ArtifactServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, store: ArtifactStore, address: tuple[str, int], cert: Path, key: Path, member_cas: list[Path],
        own_ca: Path,
    ) -> None:  # fmt: skip
        super().__init__(address, _Handler)
        self.store = store
        self.own_ca = x509.load_pem_x509_certificate(Path(own_ca).read_bytes())
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_cert_chain(cert, key)
        for ca in member_cas:
            ctx.load_verify_locations(cafile=str(ca))
        self.socket = ctx.wrap_socket(self.socket, server_side=True)


class _Handler(BaseHTTPRequestHandler):
    server: ArtifactServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        log.info("%s %s", self.address_string(), format % args)

    def _reply(self, status: HTTPStatus, body: bytes = b"", content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _digest(self) -> str | None:
        m = BLOB_PATH.match(self.path)
        if m is None:
            self._reply(HTTPStatus.BAD_REQUEST, b"path must be /v1/blobs/<64 lowercase hex sha256>\n")
            return None
        return m.group(1)

    def do_GET(self) -> None:
        digest = self._digest()
        if digest is None:
            return
        try:
            data = self.server.store.get(digest)
        except ArtifactError:
            self._reply(HTTPStatus.NOT_FOUND, b"no such blob\n")
            return
        self._reply(HTTPStatus.OK, data, "application/octet-stream")

    def do_HEAD(self) -> None:
        digest = self._digest()
        if digest is not None:
            self._reply(HTTPStatus.OK if self.server.store.has(digest) else HTTPStatus.NOT_FOUND)

    def do_PUT(self) -> None:
        digest = self._digest()
        if digest is None:
            return
        peer = self.connection.getpeercert(binary_form=True)
        if not peer or not issued_by(peer, self.server.own_ca):
            self._reply(HTTPStatus.FORBIDDEN, b"only this organization's identities may write\n")
            return
        try:
            length = int(self.headers.get("Content-Length", "-1"))
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BLOB_BYTES:
            self._reply(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body must be 0 to {MAX_BLOB_BYTES} bytes\n".encode()
            )
            return
        data = self.rfile.read(length)
        if sha256_bytes(data) != digest:
            self._reply(HTTPStatus.BAD_REQUEST, b"body does not hash to the blob name\n")
            return
        self.server.store.put_bytes(data)
        self._reply(HTTPStatus.CREATED)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, required=True, help="artifact store directory")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", type=Path, required=True, help="server TLS certificate")
    parser.add_argument("--key", type=Path, required=True, help="server TLS private key")
    parser.add_argument("--own-ca", type=Path, required=True, help="this org's CA: its identities may write")
    parser.add_argument("--member-ca", type=Path, action="append", required=True, help="a member org's CA")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    server = ArtifactServer(
        ArtifactStore(args.root), ("127.0.0.1", args.port), args.cert, args.key, args.member_ca, args.own_ca
    )
    log.info("serving %s on https://127.0.0.1:%d (mutual TLS)", args.root, args.port)
    server.serve_forever()


if __name__ == "__main__":
    main()
