"""Attested inference throughput: plain, with receipts + batch anchoring, and with one
ledger transaction per inference; plus p50/p99 time from response to anchored root.

Usage: .venv/bin/python bench/attestation_bench.py [--requests N] [--concurrency C] [--layers 30,64,2]

Brings up its own consortium (ports from 27000), registers and approves one MLP, and
runs `fabricml serve` three times on the same model with the same load. Runs on CUDA
when torch finds a GPU (pass a larger --layers there).
"""

from __future__ import annotations

import asyncio
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import options  # noqa: E402
from bench.benchnet import FABRICML, bench_network  # noqa: E402
from fabricml.attest.service_tls import client_context, identity_files  # noqa: E402
from fabricml.gateway.profile import ConnectionProfile  # noqa: E402
from fabricml.models.mlp import MLP, save  # noqa: E402
from fabricml.network.network import Network  # noqa: E402
from fabricml.network.topology import load as load_topology  # noqa: E402
from fabricml.registry.connect import open_registry  # noqa: E402
from fabricml.registry.service import ModelRegistration  # noqa: E402

PORT = 27500


def percentile(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


def service_tls(state: Path) -> ssl.SSLContext:
    """Mutual TLS towards org1's service as its auditor (predict is open, proofs need a member)."""
    net = Network(load_topology(state.parent / "topology.yaml"), state)
    org1 = net.topology.org("org1")
    return client_context(net, org1, identity_files(net, org1, "auditor"))


async def load(
    url: str, tls: ssl.SSLContext, total: int, concurrency: int, width: int
) -> tuple[float, list[dict[str, Any]]]:
    sent = 0
    answers: list[dict[str, Any]] = []
    async with httpx.AsyncClient(timeout=120, verify=tls) as client:

        async def worker() -> None:
            nonlocal sent
            while sent < total:
                sent += 1
                resp = await client.post(f"{url}/v1/predict", json={"inputs": [[0.1 * (sent % 7)] * width]})
                resp.raise_for_status()
                answers.append({**resp.json(), "respondedAt": time.time()})

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return total / (time.perf_counter() - started), answers


async def anchor_delays(url: str, tls: ssl.SSLContext, answers: list[dict[str, Any]]) -> list[float]:
    delays = []
    async with httpx.AsyncClient(timeout=60, verify=tls) as client:
        for a in answers:
            seq = a["receipt"]["sequence"]
            while True:
                resp = await client.get(f"{url}/v1/receipts/{seq}/proof")
                if resp.status_code == 200:
                    delays.append((resp.json()["anchoredAt"] - a["respondedAt"]) * 1000)
                    break
                await asyncio.sleep(0.1)
    return delays


def run_mode(state: Path, ref: str, mode: str, total: int, concurrency: int, width: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as data:
        argv = [
            *FABRICML,
            "serve",
            "--model",
            ref,
            "--port",
            str(PORT),
            "--receipts",
            mode,
            "--data-dir",
            data,
            "--topology",
            str(state.parent / "topology.yaml"),
            "--state-dir",
            str(state),
        ]
        proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ}
        )
        url, tls = f"https://127.0.0.1:{PORT}", service_tls(state)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{url}/healthz", verify=tls).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.3)
            asyncio.run(load(url, tls, min(100, total), concurrency, width))  # warm-up
            rate, answers = asyncio.run(load(url, tls, total, concurrency, width))
            result: dict[str, Any] = {"mode": mode, "rate": rate}
            if mode == "batch":
                delays = asyncio.run(anchor_delays(url, tls, answers))
                result["anchor_p50_ms"] = statistics.median(delays)
                result["anchor_p99_ms"] = percentile(delays, 99)
            return result
        finally:
            proc.terminate()
            proc.wait(timeout=60)


def main() -> None:
    parser = options.parser(__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--per-inference-requests", type=int, default=300)
    options.add_concurrency(parser, 32)
    parser.add_argument("--layers", default="30,64,2", help="MLP layer sizes")
    args = parser.parse_args()
    layers = [int(x) for x in args.layers.split(",")]

    with bench_network("fabricml-attbench", 27000) as state:
        profile = ConnectionProfile.load(state / "profiles" / "org1.json")
        with tempfile.TemporaryDirectory() as tmp:
            torch.manual_seed(0)
            model_dir = save(MLP(layers), Path(tmp) / "model")
            with open_registry(profile, "trainer") as reg:
                reg.register(model_dir, ModelRegistration("bench-model", "1", ["Org1MSP"]))
            for org in ("org1", "org2"):
                with open_registry(
                    ConnectionProfile.load(state / "profiles" / f"{org}.json"), "admin"
                ) as reg:
                    reg.approve("bench-model@1")
        ref = "bench-model@1"
        plain = run_mode(state, ref, "off", args.requests, args.concurrency, layers[0])
        batch = run_mode(state, ref, "batch", args.requests, args.concurrency, layers[0])
        single = run_mode(
            state, ref, "per-inference", args.per_inference_requests, args.concurrency, layers[0]
        )

    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"\nMLP {layers} on {device}, concurrency {args.concurrency}")
    print(f"{'mode':42} {'requests/s':>11} {'vs plain':>9}")
    print(f"{'plain inference (no receipts)':42} {plain['rate']:11.1f} {1.0:8.2f}x")
    print(f"{'receipts + batch anchoring':42} {batch['rate']:11.1f} {batch['rate'] / plain['rate']:8.2f}x")
    ratio = single["rate"] / plain["rate"]
    print(f"{'one ledger transaction per inference':42} {single['rate']:11.1f} {ratio:8.2f}x")
    print(f"\nbatch anchoring vs one transaction per inference: {batch['rate'] / single['rate']:.0f}x")
    print(
        f"response to anchored root: p50 {batch['anchor_p50_ms']:.0f} ms, p99 {batch['anchor_p99_ms']:.0f} ms"
    )


if __name__ == "__main__":
    main()
