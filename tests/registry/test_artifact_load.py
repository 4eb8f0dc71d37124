"""An artifact server under 200 idle and slow connections (an outsider's and a dishonest
member's) keeps serving the other members' fetches within seconds."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fabricml.registry.artifact_client import ArtifactClient
from fabricml.registry.artifacts import ArtifactError, ArtifactStore
from fabricml.registry.digests import sha256_bytes

from .store_harness import StoreProcess

REPO = Path(__file__).resolve().parents[2]
ATTACKERS = 200


def slow_clients(server: StoreProcess, blob: str, seconds: float) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "tests.registry.slow_clients", "--port", str(server.port),
            "--pki", str(server.pki.root), "--blob", blob, "--count", str(ATTACKERS),
            "--seconds", str(seconds)]  # fmt: skip
    attack = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert attack.stdout is not None
    assert "ready" in json.loads(attack.stdout.readline())
    return attack


def test_fetches_keep_working_while_200_idle_and_slow_connections_are_held(
    server: StoreProcess, tmp_path: Path
) -> None:
    store = ArtifactStore(server.store)
    big = os.urandom(8 << 20)
    big_digest, small_digest = store.put_bytes(big), store.put_bytes(b"manifest")
    attack = slow_clients(server, big_digest, seconds=25)
    reader, owner = server.pki.client(server.port, "org3"), server.pki.client(server.port, "org1")
    latencies, until, n = [], time.monotonic() + 15, 0  # past the handshake and head deadlines
    while time.monotonic() < until:
        started = time.monotonic()
        assert reader.get(small_digest) == b"manifest"
        result = reader.fetch_to(big_digest, tmp_path / f"got-{n}")
        assert result.size == len(big) and (tmp_path / f"got-{n}").read_bytes() == big
        assert owner.put(f"update {n}".encode()) == sha256_bytes(f"update {n}".encode())
        latencies.append(time.monotonic() - started)
        (tmp_path / f"got-{n}").unlink()
        n += 1
    attack.wait(60)
    assert attack.stdout is not None
    held = json.loads(attack.stdout.read().splitlines()[-1])
    assert server.alive()
    print(f"held {held}; {n} fetches, slowest {max(latencies):.3f} s")
    assert n >= 5 and max(latencies) < 3.0, latencies
    assert held["peak"] >= ATTACKERS * 3 // 4, held  # they were there, together


def test_many_slow_but_honest_readers_are_served_at_once(server: StoreProcess) -> None:
    """30 members' readers at ~200 KiB/s (above the minimum rate) all finish, together."""
    blob = os.urandom(1 << 20)
    digest = ArtifactStore(server.store).put_bytes(blob)
    readers = [server.pki.client(server.port, org) for org in ("org1", "org2", "org3") for _ in range(10)]
    done: list[float] = []

    def read_slowly(client: ArtifactClient) -> None:
        conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=client.context, timeout=30)
        conn.request("GET", f"/v1/blobs/{digest}")
        resp = conn.getresponse()
        got = bytearray()
        while chunk := resp.read(64 << 10):
            got += chunk
            time.sleep(0.3)  # about 200 KiB/s
        conn.close()
        assert resp.status == 200 and bytes(got) == blob
        done.append(time.monotonic())

    started = time.monotonic()
    threads = [threading.Thread(target=read_slowly, args=(c,)) for c in readers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(done) == len(readers)
    assert max(done) - started < 15  # one alone takes ~5 s; one after another would take 150 s


def test_identities_from_an_intermediate_ca_cannot_pose_as_another_org(server: StoreProcess) -> None:
    """Connections are counted per member CA; an org's intermediate CA would otherwise be a new 'org'."""
    digest = ArtifactStore(server.store).put_bytes(b"update")
    chain, key = server.pki.through_intermediate("org2")
    cas = [server.pki.ca(o) for o in ("org1", "org2", "org3")]
    sybil = ArtifactClient(f"https://127.0.0.1:{server.port}", cas, chain, key)
    with pytest.raises(ArtifactError, match="403"):
        sybil.get(digest)
    assert server.pki.client(server.port, "org2").get(digest) == b"update"
