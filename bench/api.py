"""The admin API's throughput and latency beside the ledger's own, so its overhead shows as a ratio.

Usage: .venv/bin/python bench/api.py [--reads N] [--writes N] [--concurrency C]

Brings up its own 3-org Raft consortium (ports from 28000) in a temporary directory and
starts a second org1 API (port base+61) whose rate limit is out of the way, then, at the
same concurrency on loopback, with bounded request counts:
  read:  GET /api/v1/models/{name}/{version}/history  vs  Registry:History evaluated directly
  write: POST /api/v1/tokens/mint-votes               vs  Token:VoteMint submitted directly
The direct side is our asyncio Gateway client with the same identity the API signs with
(auditor for reads, admin for writes). Prints req/s, p50 and p99 of each and the ratios.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import options  # noqa: E402
from bench.benchnet import FABRICML, bench_network  # noqa: E402
from fabricml.contracts import RegistryClient, TokenClient, async_contract  # noqa: E402
from fabricml.gateway.profile import ConnectionProfile  # noqa: E402
from fabricml.network.processes import port_in_use, wait_until  # noqa: E402
from fabricml.network.topology import load as load_topology  # noqa: E402

BASE_PORT = 28000
API_PORT = BASE_PORT + 61  # org1's block; +60 is the API `network up` started (rate-limited)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def load(total: int, concurrency: int, call: Callable[[int], Awaitable[None]]) -> dict[str, float]:
    """`total` calls from `concurrency` workers; throughput and latency percentiles."""
    latencies: list[float] = []
    counter = iter(range(total))

    async def worker() -> None:
        for i in counter:
            started = time.perf_counter()
            await call(i)
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    return {"rps": total / seconds, "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99)}


def org1_host(state: Path) -> str:
    """The address org1's site listens on (its own loopback address in the quick start)."""
    return load_topology(state / "topology.yaml").org("org1").host


def identity_files(state: Path, identity: str) -> tuple[Path, Path]:
    msp = state / "sites" / "org1" / "identities" / identity / "msp"
    return msp / "signcerts" / "cert.pem", next((msp / "keystore").iterdir())


def api_client(state: Path, identity: str, concurrency: int) -> httpx.AsyncClient:
    ctx = ssl.create_default_context(cafile=str(state / "sites" / "org1" / "ca.pem"))
    ctx.load_cert_chain(*identity_files(state, identity))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    url = f"https://{org1_host(state)}:{API_PORT}"
    return httpx.AsyncClient(base_url=url, verify=ctx, limits=limits, timeout=120)


async def measure(state: Path, reads: int, writes: int, concurrency: int) -> dict[str, dict[str, float]]:
    profile = ConnectionProfile.load(state / "profiles" / "org1.json")
    admin_api, auditor_api = (
        api_client(state, "admin", concurrency),
        api_client(state, "auditor", concurrency),
    )
    model = f"bench-{uuid.uuid4().hex[:6]}"
    files = [("files", ("weights.bin", io.BytesIO(b"weights"), "application/octet-stream"))]
    created = await admin_api.post(
        "/api/v1/models", data={"metadata": json.dumps({"name": model, "version": "1"})}, files=files
    )
    created.raise_for_status()
    msp = profile.msp_id
    channels = []

    channels.append(profile.peer().channel())
    registry = async_contract(channels[0], profile, "auditor", RegistryClient)
    token = async_contract(channels[0], profile, "admin", TokenClient)
    run = uuid.uuid4().hex[:6]

    async def api_read(i: int) -> None:
        (await auditor_api.get(f"/api/v1/models/{model}/1/history")).raise_for_status()

    async def ledger_read(i: int) -> None:
        await registry.call(lambda r: r.history(f"{model}@1"))

    async def api_write(i: int) -> None:
        body = {"id": f"api-{run}-{i}", "recipient": msp, "amount": 1}
        (await admin_api.post("/api/v1/tokens/mint-votes", json=body)).raise_for_status()

    async def ledger_write(i: int) -> None:
        await token.call(lambda t: t.vote_mint(f"gw-{run}-{i}", msp, 1))

    await load(50, concurrency, api_read)  # warm connections and caches on both sides
    await load(50, concurrency, ledger_read)
    results = {
        "read_api": await load(reads, concurrency, api_read),
        "read_ledger": await load(reads, concurrency, ledger_read),
        "write_api": await load(writes, concurrency, api_write),
        "write_ledger": await load(writes, concurrency, ledger_write),
    }
    await admin_api.aclose()
    await auditor_api.aclose()
    for channel in channels:
        await channel.close()
    return results


@contextlib.contextmanager
def api_server(state: Path) -> Iterator[None]:
    """org1's API in its own process group, without rate limits, for the bench's load."""
    env = {**os.environ, "FABRICML_API_RATE_PER_SECOND": "1000000", "FABRICML_API_RATE_BURST": "1000000"}
    where = ["--topology", str(state / "topology.yaml"), "--state-dir", str(state)]
    command = [
        *FABRICML,
        "api",
        "serve",
        "--org",
        "org1",
        "--port",
        str(API_PORT),
        *where,
    ]
    host = org1_host(state)  # `api serve` listens on the org's own address
    with open(state / "api-bench.log", "wb") as log:
        api = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            started = wait_until(lambda: port_in_use(API_PORT, host) or api.poll() is not None, 60)
            if not started or api.poll() is not None:
                raise SystemExit(f"the bench API did not start; see {state / 'api-bench.log'}")
            yield
        finally:
            os.killpg(api.pid, signal.SIGTERM)
            api.wait(timeout=30)


def main() -> None:
    parser = options.parser(__doc__)
    parser.add_argument("--reads", type=int, default=1000)
    parser.add_argument("--writes", type=int, default=300)
    options.add_concurrency(parser, 16)
    args = parser.parse_args()

    with bench_network("fabricml-apibench", BASE_PORT) as state, api_server(state):
        results = asyncio.run(measure(state, args.reads, args.writes, args.concurrency))

    print(f"\nconcurrency {args.concurrency}, {args.reads} reads, {args.writes} writes, loopback, org1")
    print(f"{'':44} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    rows = (
        ("read_api", "GET model history via API"),
        ("read_ledger", "Registry:History evaluate (Gateway)"),
        ("write_api", "POST mint vote via API"),
        ("write_ledger", "Token:VoteMint submit (Gateway)"),
    )
    for key, label in rows:
        r = results[key]
        print(f"{label:44} {r['rps']:8.1f} {r['p50_ms']:8.1f} {r['p99_ms']:8.1f}")
    for kind in ("read", "write"):
        api_r, led = results[f"{kind}_api"], results[f"{kind}_ledger"]
        print(
            f"{kind}: API/ledger throughput {api_r['rps'] / led['rps']:.2f}x, "
            f"p99 {api_r['p99_ms'] / led['p99_ms']:.2f}x"
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
