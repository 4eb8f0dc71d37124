"""The API's listener in process (no network): its sockets send small answers at once
(TCP_NODELAY; asyncio skips it on create_server's sockets), and a request head that never
ends is cut off at its deadline (review finding R2)."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fabricml.api.admission import ConnectionLimits
from fabricml.api.listener import GuardedServer, member_classifier
from fabricml.api.tls import server_context
from tests.unit.certs import Authority


async def _hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[GuardedServer, int, Path]]:
    ca = Authority("ca.org1")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = ca.issue_for(key, "api.org1")
    (tmp_path / "server.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "server.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    ca_file = ca.write(tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(_hello, host="127.0.0.1", port=port, log_level="warning")
    config.load()
    tls = server_context(tmp_path / "server.crt", tmp_path / "server.key", [ca_file])
    limits = ConnectionLimits(head_seconds=0.5)
    guarded = GuardedServer(config, tls, member_classifier({"Org1MSP": ca_file}), limits)
    thread = threading.Thread(target=guarded.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not guarded.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert guarded.started
    try:
        yield guarded, port, ca_file
    finally:
        guarded.should_exit = True
        thread.join(10)


def _client_tls(ca_file: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca_file))
    ctx.check_hostname = False
    return ctx


def test_its_connections_send_without_waiting_for_acks(server: tuple[GuardedServer, int, Path]) -> None:
    guarded, port, ca_file = server
    with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=_client_tls(ca_file)) as client:
        assert client.get("/").text == "ok"
        (protocol,) = guarded.server_state.connections
        sock = protocol.transport.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


def test_a_request_head_that_never_ends_is_cut_off(server: tuple[GuardedServer, int, Path]) -> None:
    _, port, ca_file = server
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        _client_tls(ca_file).wrap_socket(raw) as tls,
    ):
        tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        started = time.monotonic()
        try:
            answer = tls.recv(64)
        except (ConnectionError, ssl.SSLError):
            answer = b""
    assert answer == b"", f"an unfinished head was answered: {answer!r}"
    assert time.monotonic() - started < 9, "the connection was held until the client gave up"


async def _refuses_to_start(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "lifespan"
    await receive()
    await send({"type": "lifespan.startup.failed", "message": "may not be deployed"})


def test_a_server_whose_app_fails_to_start_exits_with_uvicorns_startup_failure(tmp_path: Path) -> None:
    ca = Authority("ca.org1")
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "server.crt").write_bytes(
        ca.issue_for(key, "api.org1").public_bytes(serialization.Encoding.PEM)
    )
    (tmp_path / "server.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    ca_file = ca.write(tmp_path)
    config = uvicorn.Config(_refuses_to_start, host="127.0.0.1", port=0, log_level="critical")
    config.load()
    tls = server_context(tmp_path / "server.crt", tmp_path / "server.key", [ca_file])
    guarded = GuardedServer(config, tls, member_classifier({"Org1MSP": ca_file}), ConnectionLimits())
    with pytest.raises(SystemExit) as exited:
        guarded.run()
    assert exited.value.code == 3 and not guarded.started
