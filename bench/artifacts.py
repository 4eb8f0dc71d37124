"""Artifact transport costs: fetch latency from an org's artifact server, idle and under
200 idle and slow connections; and the compact wire format for fixed-point updates
(bytes per parameter beside int64 and float32, encode and decode MB/s).

Usage: .venv/bin/python bench/artifacts.py [--fetches 40] [--large-mb 32] [--params 11000000] [--json]

- Fetches: a real artifact server process (python -m fabricml.registry.artifact_server)
  with its own three-org PKI in a temporary directory, on a free port; org3 fetches a
  4 KiB blob (a manifest) and a --large-mb blob (an update) over mutual TLS, first with
  nothing else connected, then while tests/registry/slow_clients.py holds 200
  connections (50 each: idle TCP, half a TLS handshake, a request head a byte a second
  and a large body read 256 B/s, the last two with org2's member certificate).
- Wire format: a real update (the demo's digits SmallCNN, one round of local training on
  a third of the digits with fabricml.federation.participant) and a synthetic
  --params-value update (Gaussian weights deltas, std 0.005, through fixedpoint.encode).
  MB/s are of the int64 values (8 bytes each) per CPU second, best of three; zlib -6 of
  the int64 bytes is shown beside it for comparison (not used: its bytes may change with
  zlib's version, and the commitment needs bytes that are a pure function of the values).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import options  # noqa: E402
from fabricml.federation import fixedpoint, wire  # noqa: E402
from fabricml.registry.artifacts import ArtifactStore  # noqa: E402
from tests.registry.store_harness import Pki, StoreProcess, free_port  # noqa: E402


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50": statistics.median(ordered),
        "p99": ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))],
        "max": ordered[-1],
    }


def fetch_latencies(server: StoreProcess, digests: dict[str, str], fetches: int, out: Path) -> dict[str, Any]:
    client = server.pki.client(server.port, "org3")
    result: dict[str, Any] = {}
    for name, digest in digests.items():
        times = []
        for i in range(fetches):
            started = time.perf_counter()
            client.fetch_to(digest, out / f"{name}-{i}")
            times.append(time.perf_counter() - started)
            (out / f"{name}-{i}").unlink()
        result[name] = percentiles(times)
    return result


def bench_fetches(fetches: int, large_mb: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="fabricml-bench-artifacts-") as tmp:
        root = Path(tmp)
        server = StoreProcess(Pki.make(root / "pki"), root / "store", free_port(), root / "server.log")
        store = ArtifactStore(server.store)
        digests = {
            "4 KiB": store.put_bytes(os.urandom(4096)),
            f"{large_mb} MiB": store.put_bytes(os.urandom(large_mb << 20)),
        }
        server.start()
        try:
            idle = fetch_latencies(server, digests, fetches, root)
            argv = [sys.executable, "-m", "tests.registry.slow_clients", "--port", str(server.port),
                    "--pki", str(server.pki.root), "--blob", digests[f"{large_mb} MiB"], "--count", "200",
                    "--seconds", "3600"]  # fmt: skip
            attack = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, text=True)
            assert attack.stdout is not None
            attack.stdout.readline()  # every slow client has connected once
            time.sleep(6)  # past the handshake deadline: drops and reconnections are under way
            loaded = fetch_latencies(server, digests, fetches, root)
            attack.terminate()
            attack.wait(30)
        finally:
            server.stop()
    return {"idle": idle, "under 200 slow connections": loaded}


def digits_update() -> list[np.ndarray]:
    import torch

    from fabricml.federation.data import sklearn_dataset, split_iid
    from fabricml.federation.participant import Participant
    from fabricml.federation.training import LocalTraining, parameters
    from fabricml.models.cnn import SmallCNN

    torch.manual_seed(0)
    model = SmallCNN(8, 10, channels=8)
    part = split_iid(sklearn_dataset("digits"), 3, 0)[0]
    config = {"type": "cnn", "side": 8, "classes": 10, "channels": 8}
    participant = Participant("Org1MSP/trainer", part, config, LocalTraining())
    update, _ = participant.update(fixedpoint.encode(parameters(model)), 1)
    return update


def synthetic_update(params: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    sizes = [params // 2, params // 4, params - params // 2 - params // 4]
    return fixedpoint.encode([rng.normal(0, 0.005, n).astype(np.float32) for n in sizes])


def best_cpu_seconds(fn: Any, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        fn()
        best = min(best, time.process_time() - started)
    return best


def bench_wire(name: str, update: list[np.ndarray]) -> dict[str, Any]:
    values = sum(a.size for a in update)
    raw = wire.to_bytes(update, {"task": "bench", "round": 1})
    assert all(np.array_equal(a, b) for a, b in zip(wire.from_bytes(raw), update, strict=True))
    encode = best_cpu_seconds(lambda: wire.to_bytes(update))
    decode = best_cpu_seconds(lambda: wire.from_bytes(raw))
    int64 = fixedpoint.to_bytes(update)
    started = time.process_time()
    deflated = zlib.compress(int64, 6)
    deflate_seconds = time.process_time() - started
    return {
        "update": name, "parameters": values, "wireBytesPerParam": len(raw) / values,
        "int64BytesPerParam": len(int64) / values, "float32BytesPerParam": 4.0,
        "encodeMBps": 8 * values / encode / 1e6, "decodeMBps": 8 * values / decode / 1e6,
        # for comparison only: a generic compressor (its bytes may change with zlib's version)
        "zlib6Int64BytesPerParam": len(deflated) / values, "zlib6MBps": 8 * values / deflate_seconds / 1e6,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fetches", type=int, default=40)
    parser.add_argument("--large-mb", type=int, default=32)
    parser.add_argument("--params", type=int, default=11_000_000)
    options.add_json(parser)
    args = parser.parse_args()
    report: dict[str, Any] = {
        "fetch": bench_fetches(args.fetches, args.large_mb),
        "wire": [bench_wire("digits SmallCNN, 1 round", digits_update()),
                 bench_wire(f"synthetic {args.params / 1e6:.0f}M", synthetic_update(args.params))],
    }  # fmt: skip
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"fetch latency (s), {args.fetches} fetches each, org3 from org1's artifact server")
    for load, blobs in report["fetch"].items():
        for blob, p in blobs.items():
            print(f"  {load:28} {blob:>8}: p50 {p['p50']:.4f}  p99 {p['p99']:.4f}  max {p['max']:.4f}")
    print("wire format (fabricml.wire/v1) for fixed-point updates")
    for w in report["wire"]:
        print(
            f"  {w['update']:26} {w['parameters']:>10} params: {w['wireBytesPerParam']:.3f} B/param "
            f"(int64 {w['int64BytesPerParam']:.3f}, float32 4), encode {w['encodeMBps']:.0f} MB/s, "
            f"decode {w['decodeMBps']:.0f} MB/s; zlib -6 of the int64 bytes: "
            f"{w['zlib6Int64BytesPerParam']:.3f} B/param at {w['zlib6MBps']:.0f} MB/s"
        )


if __name__ == "__main__":
    main()
