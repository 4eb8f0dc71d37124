"""A round's outcome as an agent computes it, at real sizes: its updates decoded from their
wire files and checked (fabricml.federation.reveals.collect), then
fabricml.federation.outcome.compute_outcome (the task's rule and every score, flag and
digest), by the current code beside the code at an earlier commit, in the same run,
interleaved, with wall and CPU seconds and a check that both compute the same outcome.

    .venv/bin/python -m bench.outcome_speed [--updates 3 10] [--width 150000] [--repeat 3]
        [--rules fedavg trust+cc] [--before 5795497]

Updates are built the way the agent builds them: float32 deltas of an MLP 64-<width>-10
(11.25 M parameters by default) encoded to fixed point, a shared direction plus each
participant's own noise, in round 2 with the previous global step as the reference,
written in the wire format the agent publishes. `--before` names the commit whose
ml/fabricml/federation is timed as the reference (5795497: main before the fused decoding
and the one-pass products; b5fcef3: before the vectorised exact arithmetic, whose reader
has no `collect`); it needs this repository's git. CPU seconds count every thread of the
process (decoding, the hashing thread): what one org costs the cores it shares."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from fabricml.contracts.federation import Commitment, Participant

ROOT = Path(__file__).resolve().parent.parent
TASK = "bench-task"


def before(rev: str, into: Path) -> str:
    """ml/fabricml/federation at `rev`, importable as fabricml_before.federation."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "ml/fabricml/federation"],
                             check=True, capture_output=True).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    package = into / "fabricml_before"
    (into / "ml" / "fabricml").rename(package)
    (package / "__init__.py").write_text("")
    sys.path.insert(0, str(into))
    return "fabricml_before.federation"


def _module(pkg: str, name: str) -> ModuleType:
    return importlib.import_module(f"{pkg}.{name}")


def inputs(pkg: str, n: int, width: int, rule: str) -> Any:
    """Round 2's inputs for the package's own classes (the same values for every package),
    without the updates (they come from their files)."""
    fixedpoint, evidence, outcome = (_module(pkg, m) for m in ("fixedpoint", "evidence", "outcome"))
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


def publish(pkg: str, round_inputs: Any, into: Path) -> tuple[list[Commitment], dict[str, Path]]:
    """Each update in its wire file, as its participant publishes it, and its commitment."""
    reveals = _module(pkg, "reveals")
    commitments, paths = [], {}
    for key, update in round_inputs.updates.items():
        msp, subject = key.split("/")
        paths[key] = into / f"{msp}.update"
        paths[key].write_bytes(reveals.encoded(update, {"task": TASK, "round": 2, "participant": key}))
        commitments.append(Commitment(participant=Participant(msp_id=msp, subject=subject, slashed=False),
                                      digest=key, samples=300, uri="", tx_id="tx"))  # fmt: skip
    return commitments, paths


def agent_round(
    pkg: str, base: Any, commitments: list[Commitment], paths: dict[str, Path]
) -> tuple[Any, float, float]:
    """The outcome from the files, as the agent reaches it: (outcome, decode s, outcome s)."""
    reveals, outcome = _module(pkg, "reveals"), _module(pkg, "outcome")
    shapes = [tuple(a.shape) for a in base.global_model]
    began = time.perf_counter()
    found = reveals.collect(commitments, set(paths), TASK, 2, shapes, lambda d, u: paths[d])
    decoded = time.perf_counter()
    extra = {"screened": found.screened} if hasattr(found, "screened") else {}
    out = outcome.compute_outcome(dataclasses.replace(base, updates=found.updates, **extra))
    return out, decoded - began, time.perf_counter() - decoded


def summary(out: Any) -> tuple[Any, ...]:
    a = out.assessment
    return out.digest, a.scores, a.flagged, a.reasons, a.weights, a.norms, a.distances, out.history.to_json()


Timing = tuple[float, float, float]  # decode s, outcome s, CPU s (every thread)


def timed(run: Callable[[], tuple[Any, float, float]]) -> tuple[Any, Timing]:
    cpu = time.process_time()
    out, decode, outcome = run()
    return out, (decode, outcome, time.process_time() - cpu)


def compare(old_pkg: str, new_pkg: str, n: int, width: int, rule: str, repeat: int, tmp: Path) -> bool:
    old_in, new_in = inputs(old_pkg, n, width, rule), inputs(new_pkg, n, width, rule)
    (tmp / "files").mkdir(exist_ok=True)
    commitments, paths = publish(new_pkg, new_in, tmp / "files")  # the same bytes for both
    new_in = dataclasses.replace(new_in, updates={})  # only the decoded updates stay
    old_in = dataclasses.replace(old_in, updates={})
    best_old: Timing = (float("inf"), float("inf"), float("inf"))
    best_new: Timing = best_old
    for _ in range(repeat):
        old_out, t_old = timed(lambda: agent_round(old_pkg, old_in, commitments, paths))
        del old_out
        new_out, t_new = timed(lambda: agent_round(new_pkg, new_in, commitments, paths))
        del new_out
        best_old = min(best_old, t_old, key=lambda t: t[0] + t[1])
        best_new = min(best_new, t_new, key=lambda t: t[0] + t[1])
    same = summary(agent_round(old_pkg, old_in, commitments, paths)[0]) == summary(
        agent_round(new_pkg, new_in, commitments, paths)[0]
    )
    wall_old, wall_new = best_old[0] + best_old[1], best_new[0] + best_new[1]
    cells = [
        str(n), rule, f"{best_old[0]:.2f} + {best_old[1]:.2f} = {wall_old:.2f}", f"{best_old[2]:.2f}",
        f"{best_new[0]:.2f} + {best_new[1]:.2f} = {wall_new:.2f}", f"{best_new[2]:.2f}",
        f"{wall_old / wall_new:.2f}x", f"{best_old[2] / best_new[2]:.2f}x", "yes" if same else "NO",
    ]  # fmt: skip
    print("| " + " | ".join(cells) + " |")
    return same


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--updates", type=int, nargs="+", default=[3])
    p.add_argument("--width", type=int, default=150_000, help="hidden units: 75 parameters each")
    p.add_argument("--repeat", type=int, default=3, help="runs of each, interleaved; the best counts")
    p.add_argument("--rules", nargs="+", default=["fedavg", "trust+cc"])
    p.add_argument("--before", default="5795497", help="the commit timed as the reference")
    opt = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from fabricml.federation.hugepages import avoid_compaction_stalls

    avoid_compaction_stalls()  # as the agent does
    with tempfile.TemporaryDirectory() as tmp:
        old = before(opt.before, Path(tmp))
        size = f"MLP 64-{opt.width}-10 ({75 * opt.width + 10} parameters)"
        load = os.getloadavg()[0]
        print(f"an agent's outcome from its updates' wire files, {size}, best of {opt.repeat}; "
              f"load average {load:.1f} at the start")  # fmt: skip
        heads = ["updates", "rule", f"{opt.before}: decode + outcome s", "CPU s", "now: decode + outcome s",
                 "CPU s", "speed-up (wall)", "(CPU)", "same outcome"]  # fmt: skip
        print("| " + " | ".join(heads) + " |")
        print("|---|---|---|---|---|---|---|---|---|")
        ok = all(
            compare(old, "fabricml.federation", n, opt.width, rule, opt.repeat, Path(tmp))
            for n in opt.updates
            for rule in opt.rules
        )
        print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
