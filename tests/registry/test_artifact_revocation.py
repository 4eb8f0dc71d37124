"""An artifact server refuses certificates their CA revoked (review finding R4), re-reading the
members' revocation lists when they change, and fails closed when a list is unusable.
A real server process and real TLS; the CAs are the harness's, so no ledger is needed."""

from __future__ import annotations

import http.client
import os
import ssl
from pathlib import Path

from fabricml.registry.artifact_client import ArtifactClient
from fabricml.registry.artifacts import ArtifactStore
from fabricml.registry.digests import sha256_bytes

from .store_harness import Pki, StoreProcess, free_port


def _status(client: ArtifactClient, method: str, digest: str, body: bytes | None = None) -> int:
    try:
        return client._request(method, digest, body)[0]
    except (ssl.SSLError, ConnectionError):
        return 0  # refused during the handshake


def test_a_revoked_certificate_can_neither_write_nor_read_and_nothing_is_stored(server: StoreProcess) -> None:
    pki = server.pki
    kept = pki.client(server.port, "org1").put(os.urandom(64))
    pki.publish_crl("org1", (pki.identity("org1")[0],))  # org1 revokes its own writer
    pki.publish_crl("org2", (pki.identity("org2")[0],))  # org2 revokes one of its readers
    data = os.urandom(64)
    # The 403 comes as soon as the request head is read; a client still sending the body may
    # see the connection close first. Either way the write is refused and nothing is stored.
    assert _status(pki.client(server.port, "org1"), "PUT", sha256_bytes(data), data) in (403, 0)
    assert not ArtifactStore(server.store).has(sha256_bytes(data))
    assert _status(pki.client(server.port, "org2"), "GET", kept) == 403
    assert _status(pki.client(server.port, "org3"), "GET", kept) == 200  # others are unaffected
    assert pki.client(server.port, "org3").get(kept)  # and the stored blob is unchanged


def test_a_certificate_revoked_while_its_connection_is_open_is_refused_at_its_next_request(
    server: StoreProcess,
) -> None:
    pki = server.pki
    digest = pki.client(server.port, "org1").put(os.urandom(64))
    ctx = ssl.create_default_context(cafile=str(pki.ca("org1")))
    ctx.check_hostname = False
    ctx.load_cert_chain(*pki.identity("org2"))
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=10)
    try:
        conn.request("HEAD", f"/v1/blobs/{digest}")
        first = conn.getresponse()
        first.read()
        pki.publish_crl("org2", (pki.identity("org2")[0],))
        conn.request("HEAD", f"/v1/blobs/{digest}")
        second = conn.getresponse()
        second.read()
    finally:
        conn.close()
    assert (first.status, second.status) == (200, 403)


def test_an_unusable_list_keeps_the_last_good_one_and_a_ca_without_one_gets_503(server: StoreProcess) -> None:
    pki = server.pki
    digest = pki.client(server.port, "org1").put(os.urandom(64))
    pki.publish_crl("org2", (pki.identity("org2")[0],))
    assert _status(pki.client(server.port, "org2"), "GET", digest) == 403
    pki.crl("org2").write_bytes(b"-----BEGIN X509 CRL-----\ngarbage\n-----END X509 CRL-----\n")
    assert _status(pki.client(server.port, "org2"), "GET", digest) == 403  # still revoked
    pki.crl("org2").unlink()  # e.g. between a CA's removal of its old list and its new one
    assert _status(pki.client(server.port, "org2"), "GET", digest) == 403
    # A list signed by another CA is no list of org2's CA either.
    pki.publish_crl("org3")
    pki.crl("org2").write_bytes(pki.crl("org3").read_bytes())
    assert _status(pki.client(server.port, "org2"), "GET", digest) == 403
    assert _status(pki.client(server.port, "org3"), "GET", digest) == 200


def test_a_store_started_without_a_members_list_refuses_that_members_identities_with_503(
    tmp_path: Path,
) -> None:
    pki = Pki.make(tmp_path / "pki")
    pki.crl("org3").unlink()
    server = StoreProcess(pki, tmp_path / "store", free_port(), tmp_path / "server.log")
    server.start()
    try:
        digest = pki.client(server.port, "org1").put(os.urandom(64))
        assert _status(pki.client(server.port, "org3"), "GET", digest) == 503
        assert _status(pki.client(server.port, "org2"), "GET", digest) == 200
        assert "no usable revocation list" in server.log.read_text()
        pki.publish_crl("org3")  # the CA publishes one: re-read at the next connection
        assert _status(pki.client(server.port, "org3"), "GET", digest) == 200
    finally:
        server.stop()
