"""Registry costs: registrations per second, lineage and verify latency as chains grow, and
on-chain bytes per registered version.

Usage: .venv/bin/python bench/registry_bench.py [--chain 1,10,100] [--concurrency 32]

Brings up its own 3-org Raft consortium (ports from 26000) in a temporary directory
and tears it down. On-chain bytes are the world-state record plus the registration
transaction's envelope in its block, for a small model and for a 50-file, 64 MiB one.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import options  # noqa: E402
from bench.benchnet import bench_network  # noqa: E402
from fabricml.contracts import RegistryClient, async_contract, open_connection  # noqa: E402
from fabricml.contracts.registry import RegistrationRequest  # noqa: E402
from fabricml.gateway.events import transaction_ids  # noqa: E402
from fabricml.gateway.profile import ConnectionProfile  # noqa: E402
from fabricml.registry.connect import open_registry  # noqa: E402
from fabricml.registry.manifest import build  # noqa: E402
from fabricml.registry.service import ModelRegistration, ModelRegistry  # noqa: E402


def make_model(root: Path, files: int, total_bytes: int) -> Path:
    root.mkdir(parents=True)
    for i in range(files):
        (root / f"shard-{i:03d}.safetensors").write_bytes(os.urandom(max(1, total_bytes // files)))
    return root


def timed(fn: object, repeat: int) -> float:
    assert callable(fn)
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


async def concurrent_registrations(
    profile: ConnectionProfile, model: Path, total: int, concurrency: int
) -> float:
    channel = profile.peer().channel()
    registry = async_contract(channel, profile, "trainer", RegistryClient)
    name = f"tput-{uuid.uuid4().hex[:6]}"
    pending = [
        RegistrationRequest.from_json(
            build(model, name, str(i), [profile.msp_id], created_at="2026-01-01").registration()
        )
        for i in range(total)
    ]

    async def register(request: RegistrationRequest) -> None:
        await registry.call(lambda r: r.register(request))

    async def worker() -> None:
        while pending:
            await register(pending.pop())

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    await channel.close()
    return total / seconds


def on_chain_bytes(reg: ModelRegistry, profile: ConnectionProfile, model: Path, name: str) -> tuple[int, int]:
    record = reg.register(model, ModelRegistration(name, "1", [profile.msp_id]))
    state = len(json.dumps(record.to_json(), separators=(",", ":")))
    tx_id = record.registered_by.tx_id
    with (
        open_connection(profile, "auditor") as connection,
        connection.network.block_events(start_block=0) as blocks,
    ):
        for block in blocks:
            ids = transaction_ids(block)
            if tx_id in ids:
                return state, len(block.data.data[ids.index(tx_id)])
    raise RuntimeError("registration transaction not found")


def main() -> None:
    parser = options.parser(__doc__)
    parser.add_argument("--chain", default="1,10,100", help="chain lengths to measure")
    options.add_concurrency(parser, 32)
    parser.add_argument("--registrations", type=int, default=200)
    args = parser.parse_args()
    lengths = sorted(int(x) for x in args.chain.split(","))

    with bench_network("fabricml-regbench", 26000) as state:
        root = state.parent
        profile = ConnectionProfile.load(state / "profiles" / "org1.json")
        small = make_model(root / "small", 2, 64 << 10)
        large = make_model(root / "large", 50, 64 << 20)
        with open_registry(profile, "trainer") as reg:
            started = time.perf_counter()
            for i in range(10):
                reg.register(
                    small, ModelRegistration(f"seq-{uuid.uuid4().hex[:6]}", str(i), [profile.msp_id])
                )
            sequential = 10 / (time.perf_counter() - started)
            concurrent = asyncio.run(
                concurrent_registrations(profile, small, args.registrations, args.concurrency)
            )
            rows = []
            name = f"chain-{uuid.uuid4().hex[:6]}"
            built = 0
            for length in lengths:
                while built < length:
                    parents = [f"{name}@{built}"] if built else []
                    reg.register(
                        small, ModelRegistration(name, str(built + 1), [profile.msp_id], parents=parents)
                    )
                    built += 1
                tip = f"{name}@{length}"
                lineage_ms = timed(lambda tip=tip: reg.lineage(tip), 15)
                verify_ms = timed(lambda tip=tip: reg.verify_dir(tip, small), 15)
                rows.append((length, lineage_ms, verify_ms))
            small_state, small_tx = on_chain_bytes(reg, profile, small, f"bytes-{uuid.uuid4().hex[:6]}")
            large_state, large_tx = on_chain_bytes(reg, profile, large, f"bytes-{uuid.uuid4().hex[:6]}")

    print("\nregistrations per second")
    print(f"  sequential, end to end (hash, store, endorse, commit):  {sequential:8.1f}")
    print(f"  ledger only, {args.concurrency} concurrent submissions:          {concurrent:8.1f}")
    print("\nquery latency by chain length (median of 15, ms)")
    print(f"  {'versions':>8} {'lineage':>9} {'verify':>9} {'lineage vs 1':>13}")
    for length, lineage_ms, verify_ms in rows:
        print(f"  {length:8d} {lineage_ms:9.1f} {verify_ms:9.1f} {lineage_ms / rows[0][1]:12.1f}x")
    print("\non-chain bytes per registered version (target < 4096)")
    print(f"  {'model':28} {'state record':>13} {'transaction':>12}")
    print(f"  {'2 files, 64 KiB':28} {small_state:13d} {small_tx:12d}")
    print(f"  {'50 files, 64 MiB':28} {large_state:13d} {large_tx:12d}")


if __name__ == "__main__":
    main()
