"""The API reads a request's whole body before its handler checks the caller's role
(review finding R8): an auditor, who may not upload, still makes the API hold up to
max_upload_bytes (64 MiB) plus 8 MiB of drain per request in memory. The review saw the
API's RSS go from 265 to 920 MiB with twelve such auditor requests, each answered 403."""

from __future__ import annotations

import socket

from fabricml.network.network import Network
from fabricml.network.topology import HOST

from .conftest import client_context, identity_files


def test_an_auditors_upload_is_refused_before_its_body_is_sent(network: Network) -> None:
    port = network.topology.org("org1").api_port
    ctx = client_context(network, "org1", identity_files(network, "org1", "auditor"))
    with socket.create_connection((HOST, port), timeout=10) as raw, ctx.wrap_socket(raw) as tls:
        tls.sendall(
            b"POST /api/v1/models HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: multipart/form-data; boundary=B\r\nContent-Length: 60000000\r\n\r\n"
        )
        try:
            answer = tls.recv(64)  # no body sent: an answer now means the role was checked first
        except TimeoutError:
            answer = b""
    assert answer.startswith(b"HTTP/1.1 403"), (
        f"the API waited for an auditor's 60 MB upload body before refusing it (got {answer!r})"
    )
