"""One participant's local training on 1 vs N processes (DDP): samples/s side by side,
and how far the N-process update is from one device's, in floats and in fixed point.

Usage: .venv/bin/python bench/local_training.py [--nproc 2] [--model cnn32] [--rows 4096]
       [--epochs 2] [--batch-size 64] [--device auto] [--threads 0] [--repeats 3] [--json]

Device: CUDA with NCCL when PyTorch sees a GPU (one process per GPU, so N processes need
N GPUs), else the CPU with gloo (N processes share the cores: --threads each, default
cores / N; the one-process run gets N x that). Models: `digits` (the demo's SmallCNN on
scikit-learn's digits, 1,797 rows), `cnn32` (SmallCNN on synthetic 32x32 images, 16
channels) or `mlp` (1024-2048-2048-10 on synthetic rows); --rows sizes the synthetic ones.

Runs, with the same seed, initial weights, batches and LocalTraining:
- one device, shards 1: fabricml.federation.training.train as the agent runs it today;
- one device, shards N: each batch's gradient accumulated over N slices (on the CPU with
  one process's threads), the update that N processes must reproduce bit for bit;
- N processes: fabricml.federation.distributed.train_distributed.
samples/s is the training loop's (rank 0's clock, from the first batch to the last step);
wall s includes starting the workers, the rendezvous and loading the data and model. The
first N-process run also starts the fork server (imports torch once) and is not counted.
The update comparison is against the N-process update: max |difference| of the float32
updates and the fixed-point values (fabricml.federation.fixedpoint.encode) that differ.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before CUDA starts: deterministic cuBLAS

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench import options  # noqa: E402
from fabricml.federation import fixedpoint  # noqa: E402
from fabricml.federation.data import Dataset, sklearn_dataset  # noqa: E402
from fabricml.federation.distributed import Launch, deterministic_cuda, train_distributed  # noqa: E402
from fabricml.federation.training import LocalTraining, parameters, train  # noqa: E402
from fabricml.models.mlp import build  # noqa: E402

MODELS: dict[str, dict[str, Any]] = {
    "digits": {"type": "cnn", "side": 8, "classes": 10, "channels": 16},
    "cnn32": {"type": "cnn", "side": 32, "classes": 10, "channels": 16},
    "mlp": {"type": "mlp", "layers": [1024, 2048, 2048, 10]},
}


@dataclass(frozen=True)
class Bench:
    nproc: int
    model: str
    rows: int
    epochs: int
    batch_size: int
    device: str
    threads: int
    repeats: int
    seed: int = 0


def dataset(bench: Bench) -> Dataset:
    if bench.model == "digits":
        return sklearn_dataset("digits")
    inputs = int(MODELS[bench.model].get("layers", [1024])[0])
    rng = np.random.default_rng(bench.seed)
    labels = rng.integers(0, 10, bench.rows)
    centres = rng.normal(0, 1, (10, inputs)).astype(np.float32)  # learnable: a class shifts the mean
    features = (rng.normal(0, 1, (bench.rows, inputs)).astype(np.float32) + 0.5 * centres[labels]).astype(
        np.float32
    )
    return Dataset(features, labels, f"synthetic-{bench.model}")


def run(bench: Bench, data: Dataset, shards: int, processes: int) -> dict[str, Any]:
    """One local training; returns its update, samples/s and wall seconds."""
    torch.manual_seed(bench.seed)
    model = build(MODELS[bench.model])
    start = parameters(model)
    config = LocalTraining(epochs=bench.epochs, batch_size=bench.batch_size, shards=shards, seed=bench.seed)
    began = time.perf_counter()
    if processes == 1:
        report = train(model, data, config, 1, "cuda" if bench.device == "cuda" else "cpu")
    else:
        launch = Launch(processes, bench.device, threads=bench.threads)
        report = train_distributed(model, data, config, 1, launch)
    wall = time.perf_counter() - began
    update = [w - s for w, s in zip(parameters(model), start, strict=True)]
    return {
        "update": update,
        "samplesPerSecond": report.samples_per_second,
        "wall": wall,
        "loss": report.loss,
    }


def gap(a: list[np.ndarray], b: list[np.ndarray]) -> dict[str, Any]:
    fa, fb = fixedpoint.encode(a), fixedpoint.encode(b)
    differ = sum(int((x != y).sum()) for x, y in zip(fa, fb, strict=True))
    return {
        "maxAbsFloat": max(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True)),
        "maxAbsUpdate": max(float(np.abs(x).max()) for x in b),
        "fixedPointValuesDiffering": differ,
        "fixedPointValues": sum(x.size for x in fa),
        "fixedPointIdentical": fixedpoint.to_bytes(fa) == fixedpoint.to_bytes(fb),
    }


def measure(bench: Bench) -> dict[str, Any]:
    data = dataset(bench)
    rows: dict[str, list[dict[str, Any]]] = {"one": [], "sliced": [], "processes": []}
    cores = bench.threads * bench.nproc
    multi = bench.device == "cpu" or torch.cuda.device_count() >= bench.nproc
    if multi:
        torch.set_num_threads(bench.threads)
        run(bench, data, bench.nproc, bench.nproc)  # starts the fork server: not counted
    for _ in range(bench.repeats):
        torch.set_num_threads(cores)
        rows["one"].append(run(bench, data, 1, 1))
        torch.set_num_threads(bench.threads)  # as each of the N processes
        rows["sliced"].append(run(bench, data, bench.nproc, 1))
        if multi:
            rows["processes"].append(run(bench, data, bench.nproc, bench.nproc))
    return summary(bench, data, rows, multi)


def summary(
    bench: Bench, data: Dataset, rows: dict[str, list[dict[str, Any]]], multi: bool
) -> dict[str, Any]:
    def side(runs: list[dict[str, Any]]) -> dict[str, float]:
        return {
            "samplesPerSecond": statistics.median(r["samplesPerSecond"] for r in runs),
            "wallSeconds": statistics.median(r["wall"] for r in runs),
        }

    out: dict[str, Any] = {
        "bench": bench.__dict__,
        "device": bench.device,
        "backend": "nccl" if bench.device == "cuda" else "gloo",
        "gpu": torch.cuda.get_device_name(0) if bench.device == "cuda" else None,
        "torch": torch.__version__,
        "parameters": sum(a.size for a in rows["one"][0]["update"]),
        "rowsTrained": len(data),
        "oneDevice": side(rows["one"]),
        "oneDeviceSliced": side(rows["sliced"]),
        "processes": side(rows["processes"]) if multi else None,
    }
    if multi:
        reference = rows["processes"][0]["update"]
        out["speedup"] = out["processes"]["samplesPerSecond"] / out["oneDevice"]["samplesPerSecond"]
        out["vsOneDevice"] = gap(rows["one"][0]["update"], reference)
        out["vsOneDeviceSliced"] = gap(rows["sliced"][0]["update"], reference)
        out["repeatable"] = all(
            all(np.array_equal(a, b) for a, b in zip(r["update"], reference, strict=True))
            for r in rows["processes"]
        )
    return out


def show(r: dict[str, Any]) -> None:
    b = r["bench"]
    n = b["nproc"]
    where = f"{r['device']} ({r['backend']}" + (
        f", {r['gpu']})" if r["gpu"] else f", {b['threads']} threads each)"
    )
    print(f"local training on {where}; torch {r['torch']}")
    print(
        f"model {b['model']} ({r['parameters']:,} parameters), {r['rowsTrained']:,} rows, "
        f"{b['epochs']} epochs, batch {b['batch_size']}, median of {b['repeats']}"
    )
    print(f"\n  {'':36} {'samples/s':>10} {'wall s':>8}")
    lines = [
        ("1 process, shards 1 (today)", r["oneDevice"]),
        (f"1 process, shards {n}", r["oneDeviceSliced"]),
    ]
    if r["processes"]:
        lines.append((f"{n} processes (DDP)", r["processes"]))
    for label, s in lines:
        print(f"  {label:36} {s['samplesPerSecond']:10.0f} {s['wallSeconds']:8.2f}")
    if not r["processes"]:
        print(f"\n  {n} processes on CUDA need {n} GPUs, {torch.cuda.device_count()} visible: not run")
        return
    print(f"  speedup {n} processes / 1 process: {r['speedup']:.2f}x")
    largest = r["vsOneDevice"]["maxAbsUpdate"]
    print(f"\nthe {n}-process update against one device's (max |update| {largest:.3g}):")
    for label, key in (("shards 1", "vsOneDevice"), (f"shards {n}", "vsOneDeviceSliced")):
        g = r[key]
        print(
            f"  1 process, {label:10} max |float diff| {g['maxAbsFloat']:.3g}; fixed point: "
            f"{g['fixedPointValuesDiffering']:,} of {g['fixedPointValues']:,} values differ "
            f"({'identical bytes' if g['fixedPointIdentical'] else 'bytes differ'})"
        )
    print(f"  {n}-process runs repeat bit for bit: {r['repeatable']}")


def main() -> None:
    parser = options.parser(__doc__)
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--model", choices=sorted(MODELS), default="cnn32")
    parser.add_argument("--rows", type=int, default=4096, help="rows of the synthetic data sets")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per process (CPU)")
    parser.add_argument("--repeats", type=int, default=3)
    options.add_json(parser)
    a = parser.parse_args()
    if a.nproc < 2 or a.repeats < 1 or a.rows < a.batch_size:
        parser.error("--nproc >= 2, --repeats >= 1 and --rows >= --batch-size are needed")
    device = ("cuda" if torch.cuda.is_available() else "cpu") if a.device == "auto" else a.device
    if device == "cuda":
        deterministic_cuda()
    threads = a.threads or max(1, (os.cpu_count() or 1) // a.nproc)
    bench = Bench(a.nproc, a.model, a.rows, a.epochs, a.batch_size, device, threads, a.repeats)
    result = measure(bench)
    if a.json:
        print(json.dumps(result, indent=2))
    else:
        show(result)


if __name__ == "__main__":
    main()
