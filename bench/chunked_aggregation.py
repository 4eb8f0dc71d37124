"""Chunked aggregation at model sizes that do not fit twice in memory: peak RSS and MB/s of
fixed-point FedAvg, coordinate median and trimmed mean streaming updates from their files,
beside NumPy's float32 sum of the same values streaming from theirs.

    .venv/bin/python -m bench.chunked_aggregation [--updates 10] [--size 100000000]
        [--chunk 1048576] [--dir /tmp/...] [--no-int64] [--check-size 1000000]
        [--repeat 1] [--reuse-files] [--v1]

Every update is written three ways (chunk by chunk, never whole): float32 raw (NumPy's
input), the wire format the orgs exchange (v2; with --v1 also the older v1), and raw
int64 (fixed point without the wire decode, to show the arithmetic alone). Each case
runs in a fresh process that reports its own peak RSS (with --repeat, every case runs
that many times, interleaved, and the fastest run counts: the machine may be shared);
fixed-point cases also stream the aggregate's digest (SHA-256) as the round would. MB
in: int64 counts 8 bytes a value (as bench.aggregation_speed), float32 4, so "vs float32
sum" 0.5x in MB/s is 4x the time per value. First, at --check-size, every rule's chunked
result (odd chunk size) is compared with the
whole-array rule, bytes and digest."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

GEN_VALUES = 1 << 22


def _shapes(size: int) -> list[tuple[int, ...]]:
    return [(size,)]


def generate(folder: Path, updates: int, size: int, int64: bool, v1: bool) -> None:
    from fabricml.federation import fixedpoint, wire

    for i in range(updates):
        rng = np.random.default_rng(1000 + i)
        with contextlib.ExitStack() as stack:
            f32 = stack.enter_context((folder / f"u{i}.f32").open("wb"))
            i64 = stack.enter_context((folder / f"u{i}.i64").open("wb")) if int64 else None
            writers = [
                wire.UpdateWriter(stack.enter_context((folder / f"u{i}.wire").open("wb")), _shapes(size))
            ]
            if v1:
                out = stack.enter_context((folder / f"u{i}.v1.wire").open("wb"))
                writers.append(wire.UpdateWriter(out, _shapes(size), kind=wire.FORMAT_V1))
            for start in range(0, size, GEN_VALUES):
                floats = rng.normal(0.0, 0.01, min(GEN_VALUES, size - start)).astype(np.float32)
                fixed = fixedpoint.encode([floats])[0]
                f32.write(floats.tobytes())
                if i64 is not None:
                    i64.write(fixed.astype("<i8").tobytes())
                for w in writers:
                    w.write(fixed)
            for w in writers:
                w.close()


def raw_stream(f: BinaryIO, dtype: str, chunk: int) -> Iterator[np.ndarray]:
    while True:
        a = np.fromfile(f, dtype=dtype, count=chunk)
        if not a.size:
            return
        yield a


class RawReader:
    """Raw little-endian values read straight into the caller's buffer (chunked's
    ValueReader protocol), as the wire reader does."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f

    def read_into(self, out: np.ndarray) -> int:
        return int(self.f.readinto(out.view(np.uint8))) // out.itemsize  # type: ignore[attr-defined]


def float_sum(folder: Path, updates: int, chunk: int, reuse: bool = False) -> str:
    """NumPy's sum of the float32 files, a chunk of each at a time: np.fromfile (a new
    array a chunk) or, with `reuse`, readinto one buffer per file."""
    with contextlib.ExitStack() as stack:
        files = [stack.enter_context((folder / f"u{i}.f32").open("rb")) for i in range(updates)]
        if not reuse:
            for parts in zip(*[raw_stream(f, "<f4", chunk) for f in files], strict=True):
                acc = parts[0].copy()
                for p in parts[1:]:
                    acc += p
            return ""
        buffers, acc = [np.empty(chunk, dtype="<f4") for _ in files], np.empty(chunk, dtype="<f4")
        while n := RawReader(files[0]).read_into(buffers[0]):
            for f, b in zip(files[1:], buffers[1:], strict=True):
                RawReader(f).read_into(b)
            np.copyto(acc[:n], buffers[0][:n])
            for b in buffers[1:]:
                acc[:n] += b[:n]
    return ""


def fixed(folder: Path, updates: int, chunk: int, case: str) -> str:
    from fabricml.federation import chunked  # imported before the clock starts (run_case)

    weights = [300 + 11 * i for i in range(updates)]
    rules: dict[str, Callable[[], chunked.ChunkRule]] = {
        "fedavg": lambda: chunked.fedavg(weights),
        "fedavg-equal": lambda: chunked.fedavg([1] * updates),
        "median": chunked.coordinate_median,
        "trimmed": lambda: chunked.trimmed_mean(min(2, (updates - 1) // 2)),
    }
    name, _, source = case.partition("@")
    if source == "int64":
        with contextlib.ExitStack() as stack:
            files = [stack.enter_context((folder / f"u{i}.i64").open("rb")) for i in range(updates)]
            size = (folder / "u0.i64").stat().st_size // 8
            raw = [RawReader(f) for f in files]
            return chunked.aggregate(raw, rules[name](), chunked.AggregateSink(_shapes(size)), chunk)
    suffix = ".v1.wire" if source == "v1" else ".wire"
    with chunked.wire_files([folder / f"u{i}{suffix}" for i in range(updates)], chunk) as (shapes, streams):
        return chunked.aggregate(streams, rules[name](), chunked.AggregateSink(shapes), chunk)


def run_case(folder: Path, updates: int, chunk: int, case: str) -> dict[str, Any]:
    import fabricml.federation.chunked  # noqa: F401  # not timed

    start = time.perf_counter()
    if case.startswith("float32-sum"):
        digest = float_sum(folder, updates, chunk, reuse=case.endswith("@reuse"))
    else:
        digest = fixed(folder, updates, chunk, case)
    seconds = time.perf_counter() - start
    return {"case": case, "seconds": seconds, "peakRssMiB": peak_rss_mib(), "digest": digest}


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not the parent's
    before exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def check_identity(size: int) -> bool:
    """Chunked == whole-array for every rule at an odd chunk size (bytes and digest)."""
    from fabricml.federation import aggregation, chunked, fixedpoint

    rng = np.random.default_rng(5)
    ups = [fixedpoint.encode([rng.normal(0, 0.01, size)]) for _ in range(10)]
    w = [300 + 11 * i for i in range(10)]
    pairs = [
        (chunked.fedavg(w), aggregation.fedavg(ups, w)),
        (chunked.coordinate_median(), aggregation.coordinate_median(ups)),
        (chunked.trimmed_mean(2), aggregation.trimmed_mean(ups, 2)),
    ]
    odd, shapes = 65_537, _shapes(size)
    streams = [[chunked.in_memory(u) for u in ups] for _ in pairs]
    return all(
        chunked.aggregate(s, rule, chunked.AggregateSink(shapes), odd) == fixedpoint.digest(whole)
        for s, (rule, whole) in zip(streams, pairs, strict=True)
    )


CASES = [
    ("float32-sum", "numpy float32 sum (float32 files)", 4),
    ("float32-sum@reuse", "numpy float32 sum (float32 files, readinto reused buffers)", 4),
    ("fedavg", "fixed-point fedavg, sample weights (wire v2 files)", 8),
    ("fedavg-equal", "fixed-point fedavg, equal weights (wire v2 files)", 8),
    ("fedavg@v1", "fixed-point fedavg, sample weights (wire v1 files)", 8),
    ("fedavg@int64", "fixed-point fedavg, sample weights (int64 files, readinto)", 8),
    ("median", "fixed-point coordinate median (wire v2 files)", 8),
    ("trimmed", "fixed-point trimmed mean, trim 2 (wire v2 files)", 8),
]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--updates", type=int, default=10)
    p.add_argument("--size", type=int, default=100_000_000, help="parameters per update")
    p.add_argument("--chunk", type=int, default=1 << 20, help="values per update per chunk")
    p.add_argument("--dir", type=Path, help="where the update files go (default: a temporary folder)")
    p.add_argument("--no-int64", action="store_true", help="skip the raw int64 files and their case")
    p.add_argument("--check-size", type=int, default=1_000_000)
    p.add_argument(
        "--repeat", type=int, default=1, help="rounds over every case; the fastest of each is shown"
    )
    p.add_argument("--reuse-files", action="store_true", help="keep update files already in --dir")
    p.add_argument("--v1", action="store_true", help="also fedavg from files in the older fabricml.wire/v1")
    p.add_argument("--case", help=argparse.SUPPRESS)  # a child process: one case
    opt = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if opt.case:
        print(json.dumps(run_case(opt.dir, opt.updates, opt.chunk, opt.case)))
        return 0
    folder = opt.dir or Path(tempfile.mkdtemp(prefix="fabricml-chunked-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        return report(opt, folder)
    finally:
        if opt.dir is None:
            shutil.rmtree(folder, ignore_errors=True)


def report(opt: argparse.Namespace, folder: Path) -> int:
    print(f"chunked == whole-array at {opt.updates}x{opt.check_size} (fedavg, median, trimmed): "
          f"{check_identity(opt.check_size)}")  # fmt: skip
    start = time.perf_counter()
    if not (opt.reuse_files and (folder / f"u{opt.updates - 1}.wire").exists()):
        generate(folder, opt.updates, opt.size, not opt.no_int64, opt.v1)
    wire_bytes = sum((folder / f"u{i}.wire").stat().st_size for i in range(opt.updates))
    v1_bytes = sum((folder / f"u{i}.v1.wire").stat().st_size for i in range(opt.updates)) if opt.v1 else 0
    print(f"{opt.updates} updates x {opt.size} parameters written in {time.perf_counter() - start:.0f} s; "
          f"wire v2 {wire_bytes / opt.updates / opt.size:.2f} bytes/value"
          f"{f', v1 {v1_bytes / opt.updates / opt.size:.2f}' if opt.v1 else ''}; chunk {opt.chunk} values; "
          f"whole-array int64 inputs alone: {opt.updates * opt.size * 8 / 2**30:.1f} GiB")  # fmt: skip
    cases = [
        c
        for c in CASES
        if not ((c[0].endswith("@int64") and opt.no_int64) or (c[0].endswith("@v1") and not opt.v1))
    ]
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    best: dict[str, dict[str, Any]] = {}
    digests = dict[str, set[str]]()
    for _ in range(opt.repeat):  # rounds over every case: a busy moment hits them alike
        for case, _, _ in cases:
            cmd = [sys.executable, "-m", "bench.chunked_aggregation", "--case", case, "--dir", str(folder),
                   "--updates", str(opt.updates), "--chunk", str(opt.chunk)]  # fmt: skip
            out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            if case not in best or out["seconds"] < best[case]["seconds"]:
                best[case] = out | {"peakRssMiB": max(out["peakRssMiB"], best.get(case, out)["peakRssMiB"])}
            digests.setdefault(case.partition("@")[0], set()).add(out["digest"])
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}; best of {opt.repeat}")
    rows = []
    for case, label, width in cases:
        mb = opt.updates * opt.size * width / 1e6
        rows.append(
            (label, mb, mb / best[case]["seconds"], best[case]["seconds"], best[case]["peakRssMiB"], width)
        )
    base = rows[0][2]
    print("| aggregation | MB in | s | MB/s | vs float32 sum (MB/s) | time/value vs float32 | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    for label, mb, rate, sec, rss, width in rows:
        per_value = (base / 4) / (rate / width)
        cells = f"{mb:.0f} | {sec:.2f} | {rate:.0f} | {rate / base:.2f}x | {per_value:.1f}x | {rss:.0f}"
        print(f"| {label} | {cells} |")
    if not opt.no_int64:
        print(f"fedavg digest the same from wire and int64 files: {len(digests['fedavg']) == 1}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
