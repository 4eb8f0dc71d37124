"""A round's outcome (fabricml.federation.outcome.compute_outcome, the task's rule and
every score, flag and digest) at real sizes: the current code beside the implementation at
an earlier commit, in the same run, interleaved, with the ratio and a check that both
compute the same outcome.

    .venv/bin/python -m bench.outcome_speed [--updates 3 10] [--width 150000] [--repeat 3]
        [--rule trust+cc] [--before b5fcef3]

Updates are built the way the agent builds them: float32 deltas of an MLP 64-<width>-10
(11.25 M parameters by default) encoded to fixed point, a shared direction plus each
participant's own noise, in round 2 with the previous global step as the reference.
`--before` names the commit whose ml/fabricml/federation is timed as the reference
(b5fcef3: before the vectorised exact arithmetic); it needs this repository's git."""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from bench.timing import best_of

ROOT = Path(__file__).resolve().parent.parent


def before(rev: str, into: Path) -> ModuleType:
    """ml/fabricml/federation at `rev`, importable as fabricml_before.federation."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "ml/fabricml/federation"],
                             check=True, capture_output=True).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    package = into / "fabricml_before"
    (into / "ml" / "fabricml").rename(package)
    (package / "__init__.py").write_text("")
    sys.path.insert(0, str(into))
    return importlib.import_module("fabricml_before.federation.outcome")


def inputs(outcome: ModuleType, n: int, width: int, rule: str) -> Any:
    """Round 2's inputs for `outcome`'s own classes (the same values for every module)."""
    pkg = outcome.__name__.rsplit(".", 1)[0]
    fixedpoint = importlib.import_module(f"{pkg}.fixedpoint")
    evidence = importlib.import_module(f"{pkg}.evidence")
    rng = np.random.default_rng(0)
    shapes = [(width, 64), (width,), (10, width), (10,)]
    glob = [rng.normal(0, 0.05, s).astype(np.float32) for s in shapes]
    common = [rng.normal(0, 0.01, s).astype(np.float32) for s in shapes]
    ups = {}
    for i in range(n):
        own = [c + rng.normal(0, 0.01, c.shape).astype(np.float32) for c in common]
        ups[f"Org{i + 1}MSP/trainer"] = fixedpoint.encode(own)
    previous = fixedpoint.encode([g - 0.5 * c for g, c in zip(glob, common, strict=True)])
    return outcome.RoundInputs(2, rule, fixedpoint.encode(glob), ups, {k: 300 for k in ups}, {},
                               evidence.History(), previous)  # fmt: skip


def summary(out: Any) -> tuple[Any, ...]:
    a = out.assessment
    return out.digest, a.scores, a.flagged, a.reasons, a.weights, a.norms, a.distances, out.history.to_json()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--updates", type=int, nargs="+", default=[3, 10])
    p.add_argument("--width", type=int, default=150_000, help="hidden units: 75 parameters each")
    p.add_argument("--repeat", type=int, default=3, help="runs of each, interleaved; the best counts")
    p.add_argument("--rule", default="trust+cc")
    p.add_argument("--before", default="b5fcef3", help="the commit timed as the reference")
    opt = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from fabricml.federation import outcome as now

    with tempfile.TemporaryDirectory() as tmp:
        old = before(opt.before, Path(tmp))
        print(f"compute_outcome, rule {opt.rule}, MLP 64-{opt.width}-10 ({75 * opt.width + 10} parameters), "
              f"best of {opt.repeat}")  # fmt: skip
        print(f"| updates | {opt.before} s | now s | speed-up | same outcome |")
        print("|---|---|---|---|---|")
        for n in opt.updates:
            a, b = inputs(old, n, opt.width, opt.rule), inputs(now, n, opt.width, opt.rule)
            t_old, t_now = float("inf"), float("inf")
            for _ in range(opt.repeat):
                t_old = min(t_old, best_of(lambda a=a: old.compute_outcome(a), 1))  # type: ignore[misc]
                t_now = min(t_now, best_of(lambda b=b: now.compute_outcome(b), 1))  # type: ignore[misc]
            ok = summary(old.compute_outcome(a)) == summary(now.compute_outcome(b))
            print(f"| {n} | {t_old:.2f} | {t_now:.2f} | {t_old / t_now:.1f}x | {'yes' if ok else 'NO'} |")
            if not ok:
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
