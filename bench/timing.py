"""How the benchmarks time a step and print the steps they timed."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

Steps = list[tuple[str, float]]


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """The fastest of `repeat` runs, in seconds: the least disturbed by other load."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def timed(rows: Steps, name: str, action: Callable[[], object]) -> None:
    """Run one step and record its wall-clock seconds under `name`."""
    start = time.monotonic()
    action()
    rows.append((name, time.monotonic() - start))


def print_steps(rows: Steps, as_json: bool) -> None:
    """Seconds per step, to a tenth: a JSON object or an aligned table."""
    if as_json:
        print(json.dumps({name: round(t, 1) for name, t in rows}, indent=2))
        return
    for name, t in rows:
        print(f"{name:48} {t:7.1f} s")
