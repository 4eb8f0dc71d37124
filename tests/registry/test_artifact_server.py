"""Each org's artifact server: consortium members read over mutual TLS, only the org writes."""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import time
from pathlib import Path

import pytest

from fabricml.gateway.profile import ConnectionProfile
from fabricml.network.network import Network
from fabricml.registry.artifact_client import ArtifactClient
from fabricml.registry.artifacts import ArtifactError
from fabricml.registry.connect import identity_files
from fabricml.registry.digests import sha256_bytes
from tests.certs import issue


def _client(network: Network, server_org: str, as_org: str, identity: str = "user1") -> ArtifactClient:
    profile = ConnectionProfile.load(network.layout.profile(network.topology.org(as_org)))
    cert, key = identity_files(profile, identity)
    cas = [network.layout.ca_cert(o) for o in network.topology.organizations]
    return ArtifactClient(
        f"https://127.0.0.1:{network.topology.org(server_org).artifacts_port}", cas, cert, key
    )


def test_an_org_writes_to_its_own_store_and_members_read_it(network: Network) -> None:
    data = os.urandom(2048)
    digest = _client(network, "org1", "org1").put(data)
    assert digest == sha256_bytes(data)
    reader = _client(network, "org1", "org3")
    assert reader.has(digest) and reader.get(digest) == data


def test_another_org_may_not_write_to_an_orgs_store(network: Network) -> None:
    with pytest.raises(ArtifactError, match="403"):
        _client(network, "org1", "org2").put(b"not yours")


def test_a_body_that_does_not_hash_to_its_name_is_refused(network: Network) -> None:
    client = _client(network, "org1", "org1")
    status, body = client._request("PUT", sha256_bytes(b"claimed"), b"actual")
    assert status == 400 and b"does not hash" in body


@pytest.mark.parametrize("path", ["/v1/blobs/../../etc/passwd", "/v1/blobs/ABC", "/secrets"])
def test_paths_other_than_a_blob_digest_are_refused(network: Network, path: str) -> None:
    client = _client(network, "org1", "org2")
    conn = http.client.HTTPSConnection(client.host, client.port, context=client.context, timeout=10)
    conn.request("GET", path)
    resp = conn.getresponse()
    assert resp.status == 400
    conn.close()


def test_clients_without_a_member_certificate_cannot_connect(network: Network, tmp_path: Path) -> None:
    port = network.topology.org("org1").artifacts_port
    cas = [network.layout.ca_cert(o) for o in network.topology.organizations]
    self_signed = issue("outsider").write(tmp_path / "c.pem", tmp_path / "k.pem")
    outsider = ArtifactClient(f"https://127.0.0.1:{port}", cas, *self_signed)
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        outsider.has("0" * 64)
    anonymous = ssl.create_default_context()
    for ca in cas:
        anonymous.load_verify_locations(cafile=str(ca))
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=anonymous, timeout=10)
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        conn.request("GET", f"/v1/blobs/{'0' * 64}")
        conn.getresponse()
    conn.close()


def test_idle_connections_without_a_certificate_do_not_block_members_fetches(
    network: Network, tmp_path: Path
) -> None:
    """Finding 6: one idle TCP connection used to block every fetch (the handshake ran in accept)."""
    data = os.urandom(3 << 20)
    digest = _client(network, "org1", "org1").put(data)
    port = network.topology.org("org1").artifacts_port
    idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(20)]
    try:
        reader = _client(network, "org1", "org3")
        reader.timeout = 5.0
        started = time.monotonic()
        result = reader.fetch_to(digest, tmp_path / "update.bin")
        assert time.monotonic() - started < 5.0 and result.size == len(data)
        assert (tmp_path / "update.bin").read_bytes() == data
    finally:
        for s in idle:
            s.close()
