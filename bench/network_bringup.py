"""Bring-up time (cold: binaries built from scratch; warm: cached; restart) and idle memory.

Usage: .venv/bin/python bench/network_bringup.py [--skip-cold] [--idle-seconds N]

Runs a 3-org Raft consortium on its own ports (base 24000) in temporary
directories and tears it down. Cold uses an empty binary cache and an empty Go
build cache (the Go module download cache is kept: the proxy is not what is
measured).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import options  # noqa: E402
from bench.benchnet import FABRICML, topology_text  # noqa: E402


def fabricml(env: dict[str, str], *args: str) -> float:
    start = time.monotonic()
    subprocess.run(
        [*FABRICML, *args],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.monotonic() - start


def network_memory(state_dir: Path) -> tuple[int, float, float]:
    """(process count, RSS MiB, PSS MiB) of every process whose environment points into state_dir."""
    count, rss, pss = 0, 0, 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (
                str(state_dir).encode()
                not in (entry / "environ").read_bytes() + (entry / "cmdline").read_bytes()
            ):
                continue
            rollup = (entry / "smaps_rollup").read_text()
        except OSError:
            continue
        fields = {
            line.split(":")[0]: int(line.split()[1]) for line in rollup.splitlines()[1:] if "kB" in line
        }
        count += 1
        rss += fields.get("Rss", 0)
        pss += fields.get("Pss", 0)
    return count, rss / 1024, pss / 1024


def main() -> None:
    parser = options.parser(__doc__)
    parser.add_argument("--skip-cold", action="store_true", help="skip the cold build (minutes)")
    parser.add_argument("--idle-seconds", type=float, default=15.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="fabricml-bench-") as tmp:
        root = Path(tmp)
        topology = root / "topology.yaml"
        topology.write_text(topology_text("fabricml-bench", 24000))
        base_env = {**os.environ}
        rows: list[tuple[str, float]] = []
        if not args.skip_cold:
            cold_env = {**base_env, "FABRICML_CACHE": str(root / "cache"), "GOCACHE": str(root / "gocache")}
            state = root / "cold-state"
            common = ["--topology", str(topology), "--state-dir", str(state)]
            try:
                rows.append(
                    (
                        "cold bring-up (build binaries + first start)",
                        fabricml(cold_env, "network", "up", *common),
                    )
                )
            finally:
                fabricml(cold_env, "network", "down", *common)
        state = root / "warm-state"
        common = ["--topology", str(topology), "--state-dir", str(state)]
        try:
            rows.append(
                ("warm bring-up (cached binaries, first start)", fabricml(base_env, "network", "up", *common))
            )
            time.sleep(args.idle_seconds)
            count, rss, pss = network_memory(state)
            fabricml(base_env, "network", "down", *common)
            rows.append(("restart after down (ledgers kept)", fabricml(base_env, "network", "up", *common)))
        finally:
            fabricml(base_env, "network", "down", *common)

    print(f"{'measure':50} {'seconds':>9}")
    for name, seconds in rows:
        print(f"{name:50} {seconds:9.1f}")
    if len(rows) == 3:
        print(f"{'cold / warm ratio':50} {rows[0][1] / rows[1][1]:9.1f}x")
    print(
        f"\nidle after {args.idle_seconds:.0f}s: {count} processes, RSS {rss:.0f} MiB, PSS {pss:.0f} MiB "
        "(PSS counts shared pages once)"
    )


if __name__ == "__main__":
    main()
