"""Who may talk to an org's chaincode server (review finding R13).

Its client CA was the org's TLS CA, so every TLS key of the org (artifact store, API,
admin) completed the handshake and could drive the contracts as a fake peer against state
it made up. The server now trusts the peer's own TLS certificate only."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest

from fabricml.network.network import Network
from fabricml.network.topology import HOST

from .conftest import client_context, tls_files

# HTTP/2's client preface and an empty SETTINGS frame: a gRPC server answers with its SETTINGS.
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def _served(network: Network, files: tuple[Path, Path]) -> bool:
    """Whether the chaincode server speaks gRPC with a client holding these files (TLS 1.3
    reports a refused client certificate only on the first read)."""
    ctx = client_context(network, "org1", files)
    ctx.set_alpn_protocols(["h2"])
    port = network.topology.org("org1").chaincode_port
    try:
        with socket.create_connection((HOST, port), timeout=10) as raw, ctx.wrap_socket(raw) as tls:
            tls.sendall(PREFACE)
            frame = tls.recv(9)
            return len(frame) == 9 and frame[3] == 0x04
    except (ssl.SSLError, ConnectionError, TimeoutError):
        return False


@pytest.mark.parametrize("identity", ["artifacts", "api", "admin", "chaincode"])
def test_no_tls_key_but_the_peers_reaches_the_chaincode_server(network: Network, identity: str) -> None:
    assert not _served(network, tls_files(network, "org1", identity)), f"org1's {identity} posed as its peer"


def test_the_peers_tls_key_does(network: Network) -> None:
    assert _served(network, tls_files(network, "org1", "peer0"))
