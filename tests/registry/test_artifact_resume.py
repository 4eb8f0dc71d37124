"""Blobs stream to and from a real artifact server process; a fetch broken by the server's
death resumes where it stopped once the server is back, and only the right bytes are kept."""

from __future__ import annotations

import http.client
import os
import ssl
import threading
import time
from pathlib import Path
from typing import cast

import pytest

from fabricml.contracts import RegistryClient
from fabricml.registry.artifact_client import BlobRefused, FetchInterrupted, FetchResult, Retry
from fabricml.registry.artifacts import ArtifactError, ArtifactStore
from fabricml.registry.digests import sha256_bytes, sha256_file
from fabricml.registry.service import ModelRegistry
from fabricml.registry.spares import Spares

from .store_harness import StoreProcess

LARGE = 200 << 20


def _random_file(path: Path, size: int) -> Path:
    with path.open("wb") as f:
        for _ in range(size >> 20):
            f.write(os.urandom(1 << 20))
    return path


def test_a_fetch_resumes_after_the_server_is_killed_mid_blob_and_restarted(
    server: StoreProcess, tmp_path: Path
) -> None:
    digest = ArtifactStore(server.store).put_file(_random_file(tmp_path / "update.bin", LARGE))
    (tmp_path / "update.bin").unlink()
    reached, killed = threading.Event(), threading.Event()

    def progress(done: int, total: int) -> None:
        if done >= total // 3 and not reached.is_set():
            reached.set()
            killed.wait(30)  # the rest of the blob now comes from a restarted server

    results: list[FetchResult | BaseException] = []
    client = server.pki.client(server.port, "org3")
    dest = tmp_path / "fetched" / "update.bin"

    def fetch() -> None:
        try:
            results.append(client.fetch_to(digest, dest, progress))
        except BaseException as exc:  # handed to the test thread
            results.append(exc)

    worker = threading.Thread(target=fetch)
    worker.start()
    assert reached.wait(60)
    assert server.peak_rss() < 120 << 20  # the blob streams from its file: never held whole
    server.kill()
    killed.set()
    time.sleep(0.5)
    server.start()
    worker.join(120)
    result = results[0]
    assert isinstance(result, FetchResult), result
    assert result.size == LARGE and sha256_file(dest) == digest
    assert result.resumed_at and LARGE // 3 <= result.resumed_at[0] < LARGE, result
    assert not dest.with_name("update.bin.partial").exists()


def test_an_interrupted_fetch_keeps_its_bytes_and_a_later_fetch_continues_them(
    server: StoreProcess, tmp_path: Path
) -> None:
    digest = ArtifactStore(server.store).put_file(_random_file(tmp_path / "u.bin", 64 << 20))
    client = server.pki.client(server.port, "org3", retry=Retry(attempts=3, first_delay=0.05))
    dest = tmp_path / "got.bin"

    def stop_half_way(done: int, total: int) -> None:
        if done >= 8 << 20 and server.alive():  # well before the socket buffers hold the rest
            server.kill()

    with pytest.raises(FetchInterrupted, match="stopped at byte"):
        client.fetch_to(digest, dest, stop_half_way)
    partial = dest.with_name("got.bin.partial")
    kept = partial.stat().st_size
    assert 8 << 20 <= kept < 64 << 20 and not dest.exists()
    server.start()
    result = client.fetch_to(digest, dest)
    assert result.started_at == kept and result.size == 64 << 20
    assert sha256_file(dest) == digest and not partial.exists()
    again = client.fetch_to(digest, tmp_path / "again.bin")  # a whole fetch: no partial, no resume
    assert again.started_at == 0 and again.resumed_at == [] and again.size == 64 << 20


def test_a_fetch_over_a_spare_keeps_only_the_fetched_bytes_for_the_resume(
    server: StoreProcess, tmp_path: Path
) -> None:
    """Written over an older file's pages (fabricml.registry.spares): a fetch broken
    midway leaves exactly the bytes it got as the partial file, never the spare's tail."""
    digest = ArtifactStore(server.store).put_file(_random_file(tmp_path / "u.bin", 64 << 20))
    pool = Spares(tmp_path / ".spares")
    spare = tmp_path / "old-update.bin"
    spare.write_bytes(b"\xee" * (80 << 20))  # longer than the blob, none of its bytes
    inode = spare.stat().st_ino
    pool.give(spare)
    client = server.pki.client(server.port, "org3", retry=Retry(attempts=3, first_delay=0.05))
    dest = tmp_path / "got.bin"

    def stop_half_way(done: int, total: int) -> None:
        if done >= 8 << 20 and server.alive():
            server.kill()

    with pytest.raises(FetchInterrupted):
        client.fetch_to(digest, dest, stop_half_way, spares=pool, size=64 << 20)
    partial = dest.with_name("got.bin.partial")
    kept = partial.stat().st_size
    assert 8 << 20 <= kept < 64 << 20 and partial.stat().st_ino == inode
    with (tmp_path / "u.bin").open("rb") as original:
        assert partial.read_bytes() == original.read(kept)
    server.start()
    result = client.fetch_to(digest, dest, spares=pool, size=64 << 20)
    assert result.started_at == kept and sha256_file(dest) == digest and dest.stat().st_size == 64 << 20
    assert not list(tmp_path.glob("got.bin.*"))
    pool.give(dest)  # a whole fetch over it: the spare's bytes cut to the blob's
    again = client.fetch_to(digest, tmp_path / "again.bin", spares=pool, size=1)
    assert again.started_at == 0 and sha256_file(tmp_path / "again.bin") == digest
    assert (tmp_path / "again.bin").stat().st_ino == inode


def test_a_partial_file_with_wrong_bytes_is_refused_and_thrown_away(
    server: StoreProcess, tmp_path: Path
) -> None:
    digest = ArtifactStore(server.store).put_bytes(b"A" * 100_000)
    dest = tmp_path / "got.bin"
    dest.with_name("got.bin.partial").write_bytes(b"B" * 50_000)
    client = server.pki.client(server.port, "org3")
    with pytest.raises(ArtifactError, match="does not match its digest"):
        client.fetch_to(digest, dest)
    assert not dest.exists() and not dest.with_name("got.bin.partial").exists()
    assert client.fetch_to(digest, dest).size == 100_000 and dest.read_bytes() == b"A" * 100_000


def test_a_store_without_the_blob_leaves_the_partial_bytes_from_another_store_for_the_resume(
    server: StoreProcess, tmp_path: Path
) -> None:
    """An agent tries every member's store in turn: the one that answers 404 must not
    throw away what the store that broke mid-fetch had already sent."""
    blob = os.urandom(300_000)
    digest = sha256_bytes(blob)
    dest = tmp_path / "got.bin"
    partial = dest.with_name("got.bin.partial")
    partial.write_bytes(blob[:120_000])  # as a store killed mid-fetch left it
    client = server.pki.client(server.port, "org3")
    with pytest.raises(BlobRefused, match="404"):
        client.fetch_to(digest, dest)
    assert partial.read_bytes() == blob[:120_000] and not dest.exists()
    ArtifactStore(server.store).put_bytes(blob)  # a store that has it
    result = client.fetch_to(digest, dest)
    assert result.started_at == 120_000 and dest.read_bytes() == blob and not partial.exists()


def test_a_partial_file_that_is_already_whole_is_checked_and_kept(
    server: StoreProcess, tmp_path: Path
) -> None:
    digest = ArtifactStore(server.store).put_bytes(b"whole")
    dest = tmp_path / "got.bin"
    dest.with_name("got.bin.partial").write_bytes(b"whole")
    result = server.pki.client(server.port, "org3").fetch_to(digest, dest)
    assert result.started_at == 5 and dest.read_bytes() == b"whole"


def test_streaming_to_a_callback_hands_over_every_byte_in_order(server: StoreProcess) -> None:
    data = os.urandom(3 << 20)
    client = server.pki.client(server.port, "org1")
    digest = client.put(data)
    chunks: list[bytes] = []
    result = server.pki.client(server.port, "org2").stream(digest, chunks.append)
    assert b"".join(chunks) == data and result.size == len(data) and len(chunks) > 1


def test_an_owner_uploads_a_file_in_chunks_and_a_missing_blob_is_not_retried(
    server: StoreProcess, tmp_path: Path
) -> None:
    path = _random_file(tmp_path / "w.bin", 16 << 20)
    digest = server.pki.client(server.port, "org1").put_file(path)
    assert ArtifactStore(server.store).verify(digest)
    reader = server.pki.client(server.port, "org3")
    started = time.monotonic()
    with pytest.raises(ArtifactError, match="404") as refused:
        reader.get("0" * 64)
    assert not isinstance(refused.value, FetchInterrupted) and time.monotonic() - started < 2


def _raw(server: StoreProcess, org: str) -> http.client.HTTPSConnection:
    client = server.pki.client(server.port, org)
    return http.client.HTTPSConnection("127.0.0.1", server.port, context=client.context, timeout=10)


def test_ranges_are_served_and_a_range_past_the_end_says_the_size(server: StoreProcess) -> None:
    digest = ArtifactStore(server.store).put_bytes(bytes(range(256)))
    conn = _raw(server, "org2")
    conn.request("GET", f"/v1/blobs/{digest}", headers={"Range": "bytes=250-"})
    resp = conn.getresponse()
    assert resp.status == 206 and resp.read() == bytes(range(250, 256))
    assert resp.headers["Content-Range"] == "bytes 250-255/256"
    conn.request("GET", f"/v1/blobs/{digest}", headers={"Range": "bytes=10-12"})  # same connection
    resp = conn.getresponse()
    assert resp.status == 206 and resp.read() == bytes([10, 11, 12])
    for bad in ("bytes=256-", "bytes=-5", "bytes=1-2,4-5", "items=0-"):
        conn.request("GET", f"/v1/blobs/{digest}", headers={"Range": bad})
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 416 and resp.headers["Content-Range"] == "bytes */256", bad
    conn.close()


def test_a_body_over_the_limit_or_without_a_length_is_refused_before_it_is_read(server: StoreProcess) -> None:
    for headers in ({"Content-Length": str(3 << 30)}, {"Transfer-Encoding": "chunked"}):
        conn = _raw(server, "org1")
        conn.putrequest("PUT", f"/v1/blobs/{'a' * 64}")
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        resp = conn.getresponse()
        assert resp.status in (411, 413), (headers, resp.status)
        assert b"Content-Length" in resp.read() or resp.status == 413
        conn.close()
    assert not list(Path(server.store).glob(".incoming-*"))


def test_one_org_holding_its_share_of_connections_does_not_lock_out_another(server: StoreProcess) -> None:
    digest = ArtifactStore(server.store).put_bytes(b"update")
    held = []
    for _ in range(32):  # ServerLimits.connections_per_org
        conn = _raw(server, "org2")
        conn.connect()
        held.append(conn)
    time.sleep(0.3)
    started = time.monotonic()
    assert server.pki.client(server.port, "org3").get(digest) == b"update"
    assert time.monotonic() - started < 2
    extra = _raw(server, "org2")  # parked in org2's queue until one of its slots frees
    extra.request("GET", f"/v1/blobs/{digest}")
    time.sleep(0.5)
    held.pop().close()
    resp = extra.getresponse()
    assert resp.status == 200 and resp.read() == b"update"
    for conn in [*held, extra]:
        conn.close()


def test_an_outsider_cannot_complete_a_handshake(server: StoreProcess) -> None:
    outsider = server.pki.client(server.port, "outsider", retry=Retry(attempts=1))
    with pytest.raises((ssl.SSLError, OSError, ArtifactError)):
        outsider.get("0" * 64)


def _registry_of_org3(server: StoreProcess, tmp_path: Path, patience: float) -> ModelRegistry:
    """org3's registry with org1's store as its only member store; blob() never reads the
    ledger, so none is opened."""
    remotes = [server.pki.client(server.port, "org3", timeout=5)]
    store = ArtifactStore(tmp_path / "org3-store")
    return ModelRegistry(cast(RegistryClient, None), store, remotes, "Org3MSP", patience=patience)


def test_a_blob_whose_only_store_restarts_is_fetched_once_it_is_back(
    server: StoreProcess, tmp_path: Path
) -> None:
    blob = os.urandom(200_000)
    digest = ArtifactStore(server.store).put_bytes(blob)
    registry = _registry_of_org3(server, tmp_path, patience=60)
    server.kill()
    restart = threading.Timer(4.0, server.start)
    restart.start()
    started = time.monotonic()
    try:
        assert registry.blob(digest) == blob
    finally:
        restart.join()
    assert time.monotonic() - started >= 3.5  # it waited for the restart instead of giving up
    assert registry.store.get(digest) == blob  # and kept its own copy


def test_a_blob_no_store_holds_fails_at_once_and_an_unreachable_one_after_the_patience(
    server: StoreProcess, tmp_path: Path
) -> None:
    registry = _registry_of_org3(server, tmp_path, patience=60)
    missing = sha256_bytes(b"held by nobody")
    started = time.monotonic()
    with pytest.raises(ArtifactError, match="no reachable artifact store"):
        registry.blob(missing)  # a 404 is an answer: no waiting
    assert time.monotonic() - started < 10
    server.kill()
    registry.patience = 3.0
    started = time.monotonic()
    with pytest.raises(ArtifactError, match="Connection refused"):
        registry.blob(missing)
    assert 2.0 <= time.monotonic() - started < 20
