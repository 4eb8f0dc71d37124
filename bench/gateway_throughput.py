"""Committed transactions per second and latency: our Python client vs the official Node client.

Usage: .venv/bin/python bench/gateway_throughput.py [--transactions N] [--concurrency C] [--rounds R]

Brings up its own 3-org Raft consortium (ports from 25000) in a temporary
directory, then, on the same peer, with the same identity, chaincode function
(Conformance:Put on a fresh key) and concurrency, runs the Python client
(asyncio) and the Node client (@hyperledger/fabric-gateway) in alternating
rounds, and prints the best round of each side by side with the ratio. Also
prints the signing throughput of our ECDSA P-256 signer.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import options  # noqa: E402
from bench.benchnet import bench_network  # noqa: E402
from fabricml.gateway import connect, sha256  # noqa: E402
from fabricml.gateway.profile import ConnectionProfile  # noqa: E402
from tests.conftest import use_test_chaincode_build  # noqa: E402
from tests.interop.nodeclient import node_config, run_node  # noqa: E402

FUNCTION = "Conformance:Put"


def percentile(sorted_values: list[float], p: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(p / 100 * len(sorted_values)))]


async def python_round(profile: ConnectionProfile, total: int, concurrency: int) -> dict[str, float]:
    identity, signer, hash_ = profile.identity("user1")
    channel = profile.peer().channel()
    contract = (
        connect(channel, identity, signer, hash_)
        .get_network(profile.channel_name)
        .get_contract(profile.chaincode_name)
    )
    latencies: list[float] = []
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            await contract.submit_transaction(FUNCTION, f"bench-py-{uuid.uuid4()}", "v")
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    await channel.close()
    latencies.sort()
    return {"tps": total / seconds, "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99)}


def signing_rate(profile: ConnectionProfile, seconds: float = 2.0) -> float:
    _, signer, _ = profile.identity("user1")
    digest = sha256(b"proposal bytes")
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        signer(digest)
        count += 1
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = options.parser(__doc__)
    parser.add_argument("--transactions", type=int, default=600)
    options.add_concurrency(parser, 32)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    use_test_chaincode_build()  # the benchmark calls the Conformance contract
    with bench_network("fabricml-gwbench", 25000) as state:
        profile = ConnectionProfile.load(state / "profiles" / "org1.json")
        config = node_config(profile, "user1")
        # Warm both clients (connections, chaincode, JIT) before measuring.
        asyncio.run(python_round(profile, 50, args.concurrency))
        run_node(config, "bench", FUNCTION, "50", str(args.concurrency))
        py: list[dict[str, float]] = []
        node: list[dict[str, Any]] = []
        for _ in range(args.rounds):
            py.append(asyncio.run(python_round(profile, args.transactions, args.concurrency)))
            node.append(run_node(config, "bench", FUNCTION, str(args.transactions), str(args.concurrency)))
        signs = signing_rate(profile)

    best_py = max(py, key=lambda r: r["tps"])
    best_node = max(node, key=lambda r: r["tps"])
    print(f"\n{args.transactions} x {FUNCTION}, concurrency {args.concurrency}, best of {args.rounds} rounds")
    print(f"{'':18} {'fabricml (Python)':>18} {'Node (official)':>16} {'ratio':>8}")
    for key, label in (("tps", "committed tx/s"), ("p50_ms", "p50 latency ms"), ("p99_ms", "p99 latency ms")):
        print(f"{label:18} {best_py[key]:18.1f} {best_node[key]:16.1f} {best_py[key] / best_node[key]:7.2f}x")
    print(f"{'signatures/s':18} {signs:18.0f}   (ECDSA P-256, low-S, this signer)")
    print(json.dumps({"python_rounds": py, "node_rounds": node}, indent=None))


if __name__ == "__main__":
    main()
