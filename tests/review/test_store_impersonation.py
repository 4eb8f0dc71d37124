"""A member's artifact store cannot be impersonated with another member's certificate
(review finding R7). With one network position (every org's store on 127.0.0.1 here), org3
serves with its own store's TLS key where org2 expects org1's store: org2's client must
refuse the handshake, or org3 could withhold org1's updates from org2 (the slashing path
of "unusable" updates)."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from fabricml.gateway.profile import ConnectionProfile
from fabricml.network.network import Network
from fabricml.registry.artifact_client import ArtifactClient
from fabricml.registry.connect import member_stores

DIGEST = "0" * 64


@contextmanager
def store_posing_with(tls: Path) -> Iterator[tuple[int, list[str]]]:
    """A TLS server on 127.0.0.1 with this store key that says 200 to any request;
    (its port, what happened on each connection)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls / "server.crt", tls / "server.key")
    listener = socket.create_server(("127.0.0.1", 0))
    seen: list[str] = []

    def serve() -> None:
        while True:
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(raw, server_side=True) as conn:
                    conn.recv(4096)
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    seen.append("served")
            except (ssl.SSLError, OSError) as err:
                seen.append(f"refused: {type(err).__name__}")

    thread = threading.Thread(target=serve, daemon=True, name="impostor-store")
    thread.start()
    try:
        yield listener.getsockname()[1], seen
    finally:
        listener.close()
        thread.join(timeout=5)


def _org2_client_of_org1_store_at(network: Network, port: int) -> ArtifactClient:
    profile = ConnectionProfile.load(network.layout.profile(network.topology.org("org2")))
    profile.raw["artifactServers"]["org1"]["url"] = f"https://127.0.0.1:{port}"
    return next(s for s in member_stores(profile, "trainer") if s.port == port)


def test_another_members_store_key_cannot_pose_as_a_members_store(network: Network) -> None:
    org3_key = network.layout.site("org3").identity_tls("artifacts")
    with store_posing_with(org3_key) as (port, seen):
        store = _org2_client_of_org1_store_at(network, port)
        with pytest.raises(ssl.SSLCertVerificationError):
            store.has(DIGEST)
    assert "served" not in seen, seen


def test_the_members_own_store_key_is_accepted_there(network: Network) -> None:
    """The same server with org1's own key: the handshake and the request go through, so
    the refusal above is the issuer's, not the impostor's making."""
    org1_key = network.layout.site("org1").identity_tls("artifacts")
    with store_posing_with(org1_key) as (port, seen):
        store = _org2_client_of_org1_store_at(network, port)
        assert store.has(DIGEST) is True
    assert seen == ["served"], seen
