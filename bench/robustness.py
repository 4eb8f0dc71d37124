"""Robustness of federated rounds against colluding poisoning, in-process.

Digits, the small CNN, N participants (one per org) split IID or Dirichlet(alpha); a
coalition of 20 % or 30 % of them runs one attack of fabricml.federation.attacks; every
round goes through fabricml.federation.outcome.compute_outcome, the code the agents run.
For each (rule, split, attack, fraction) over several seeds it prints the final accuracy
(mean of the last three rounds) against the clean run with the same seed, the rounds in
which the attackers' influence was cut (their share of the aggregate below half their
head count), and the honest participants down-weighted (counted below half, per round)
and slashed (flagged).

    .venv/bin/python -m bench.robustness                       # default rule, every attack
    .venv/bin/python -m bench.robustness --rules nnm+cc,median --splits 0.5 --seeds 2
    .venv/bin/python -m bench.robustness --clean-only --seeds 20   # false-slash check
    .venv/bin/python -m bench.robustness --attacks absent      # the floor: attackers' data missing
    .venv/bin/python -m bench.robustness --from-json out.json --wide   # tables of an earlier run
    .venv/bin/python -m bench.robustness --json out.json

Runs go to a process pool of at most 2 workers (one torch thread each); clean runs are
cached under ~/.cache/fabricml/robustness, keyed by their settings and the source of
fabricml.federation."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

CACHE = Path.home() / ".cache" / "fabricml" / "robustness"
MODEL = {"type": "cnn", "side": 8, "classes": 10, "channels": 8}
SPLITS = ("iid", "0.5", "0.1")
FRACTIONS = (0.2, 0.3)
ABSENT = "absent"  # not an attack: the coalition's members never take part


@dataclass(frozen=True)
class Config:
    rule: str
    split: str  # "iid" or a Dirichlet alpha
    seed: int
    attack: str = ""  # "" for the clean run
    fraction: float = 0.0
    participants: int = 10
    rounds: int = 10
    epochs: int = 5
    lr: float = 0.1
    spread: float = 0.3
    root: int = 0  # rows of the consortium's root dataset (0: none)

    def clean(self) -> Config:
        return Config(**{**asdict(self), "attack": "", "fraction": 0.0})


def _source_digest() -> str:
    import fabricml.federation as fed

    h = hashlib.sha256()
    for path in sorted(Path(fed.__file__).parent.rglob("*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def run(config: Config) -> dict[str, Any]:
    """One simulated task; returns per-round accuracy and what happened to whom."""
    import torch

    from fabricml.federation.attacks import Coalition
    from fabricml.federation.data import sklearn_dataset, split_dirichlet, split_iid
    from fabricml.federation.participant import Participant
    from fabricml.federation.simulation import Simulation
    from fabricml.federation.training import LocalTraining

    torch.set_num_threads(1)
    started = time.perf_counter()
    train, test = sklearn_dataset("digits").split(0.25, 0)
    if config.root:
        order = np.random.default_rng(12345).permutation(len(train))
        root_data, train = train.take(order[: config.root], "root"), train.take(order[config.root :])
    n = config.participants
    parts = (
        split_iid(train, n, config.seed)
        if config.split == "iid"
        else split_dirichlet(train, n, float(config.split), config.seed)
    )
    keys = [f"Org{i + 1}MSP/trainer" for i in range(n)]
    ps = [
        Participant(
            k, d, MODEL, LocalTraining(epochs=config.epochs, lr=config.lr, seed=config.seed * 100 + i)
        )
        for i, (k, d) in enumerate(zip(keys, parts, strict=True))
    ]
    m = round(config.fraction * n)
    attackers = sorted(keys[i] for i in np.random.default_rng(config.seed).choice(n, m, replace=False))
    sim = Simulation.start(ps, config.rule, test, config.seed)
    if m and config.attack == ABSENT:
        sim.excluded.update(attackers)  # the floor: what the honest reach without the attackers' data
    elif m:
        sim.coalition = Coalition(config.attack, frozenset(attackers), n, config.spread)
    if config.root:
        sim.root = Participant("root", root_data, MODEL, LocalTraining(epochs=config.epochs, lr=config.lr))
    rounds = [_round_record(sim, r, keys, attackers) for r in range(1, config.rounds + 1)]
    return _summary(config, attackers, rounds, time.perf_counter() - started)


def _round_record(sim: Any, r: int, keys: list[str], attackers: list[str]) -> dict[str, Any]:
    """One round's accuracy, whether the coalition was cut out, and whom it flagged."""
    active = [k for k in keys if k not in sim.excluded]
    out = sim.round(r)
    share = sum(out.weights.get(k, 0) for k in attackers) / max(1, sum(out.weights.values()))
    live = [k for k in attackers if k in active]
    return {
        "round": r,
        "accuracy": out.accuracy,
        "cut": not live or share * len(active) < 0.5 * len(live),
        "honestDown": sum(1 for k in active if k not in attackers and out.weights.get(k, 0) < 500),
        "flagged": out.flagged,
        "fallback": out.fallback,
    }  # fmt: skip


def _summary(
    config: Config, attackers: list[str], rounds: list[dict[str, Any]], seconds: float
) -> dict[str, Any]:
    flagged = {k for r in rounds for k in r["flagged"]}
    return {
        "config": asdict(config),
        "attackers": attackers,
        "accuracy": [r["accuracy"] for r in rounds],
        "final": float(np.mean([r["accuracy"] for r in rounds[-3:]])),
        "cutRounds": sum(r["cut"] for r in rounds) if attackers else 0,
        "honestDownPerRound": float(np.mean([r["honestDown"] for r in rounds])),
        "honestSlashed": sorted(flagged - set(attackers)),
        "attackersSlashed": sorted(flagged & set(attackers)),
        "fallbacks": [r["fallback"] for r in rounds if r["fallback"]],
        "seconds": seconds,
    }


def _cache_path(config: Config, source: str) -> Path:
    key = hashlib.sha256(json.dumps([asdict(config), source], sort_keys=True).encode()).hexdigest()[:24]
    return CACHE / f"{key}.json"


def _cached(config: Config, source: str) -> dict[str, Any] | None:
    path = _cache_path(config, source)
    return json.loads(path.read_text()) if path.exists() else None


def run_all(configs: list[Config], workers: int) -> list[dict[str, Any]]:
    source = _source_digest()
    results: list[dict[str, Any]] = []
    todo = []
    for c in configs:
        hit = _cached(c, source) if not c.attack else None
        if hit:
            results.append(hit)
        else:
            todo.append(c)
    print(f"{len(configs)} runs: {len(results)} clean runs cached, {len(todo)} to run", file=sys.stderr)
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=max(1, min(2, workers))) as pool:
        futures = {pool.submit(run, c): c for c in todo}
        for done, f in enumerate(as_completed(futures), 1):
            res, c = f.result(), futures[f]
            if not c.attack:
                CACHE.mkdir(parents=True, exist_ok=True)
                _cache_path(c, source).write_text(json.dumps(res))
            results.append(res)
            eta = (time.perf_counter() - started) / done * (len(todo) - done)
            print(
                f"[{done}/{len(todo)}] {c.rule} {c.split} {c.attack or 'clean'} {c.fraction:.0%} "
                f"seed {c.seed}: "
                f"final {res['final']:.3f} ({res['seconds']:.1f}s, about {eta / 60:.1f} min left)",
                file=sys.stderr,
            )
    return results


def summarize(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    clean = {
        (r["config"]["rule"], r["config"]["split"], r["config"]["seed"]): r
        for r in results
        if not r["config"]["attack"]
    }
    groups: dict[tuple[str, str, str, float], list[dict[str, Any]]] = {}
    for r in results:
        c = r["config"]
        groups.setdefault((c["rule"], c["split"], c["attack"], c["fraction"]), []).append(r)
    rows = []
    for (rule, split, attack, fraction), rs in sorted(groups.items()):
        base = [clean[(rule, split, r["config"]["seed"])]["final"] for r in rs]
        rows.append({
            "rule": rule, "split": split, "attack": attack or "clean", "fraction": fraction, "runs": len(rs),
            "final": float(np.mean([r["final"] for r in rs])), "clean": float(np.mean(base)),
            "delta": float(np.mean([r["final"] - b for r, b in zip(rs, base, strict=True)])),
            "worstDelta": float(min(r["final"] - b for r, b in zip(rs, base, strict=True))),
            "cutRounds": float(np.mean([r["cutRounds"] for r in rs])), "rounds": rs[0]["config"]["rounds"],
            "honestDown": float(np.mean([r["honestDownPerRound"] for r in rs])),
            "honestSlashed": sum(len(r["honestSlashed"]) for r in rs),
            "attackersSlashed": sum(len(r["attackersSlashed"]) for r in rs),
            "fallbacks": sum(len(r["fallbacks"]) for r in rs),
        })  # fmt: skip
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| rule | split | attack | attackers | runs | final acc | clean | Δ points (worst) | rounds cut "
        "| honest ↓ per round | honest slashed | attackers slashed |"
    )
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        split = "IID" if r["split"] == "iid" else f"Dir({r['split']})"
        cut = f"{r['cutRounds']:.1f}/{r['rounds']}" if r["attack"] != "clean" else ""
        frac = f"{r['fraction']:.0%}" if r["attack"] != "clean" else ""
        lines.append(
            f"| {r['rule']} | {split} | {r['attack']} | {frac} | {r['runs']} "
            f"| {r['final']:.3f} | {r['clean']:.3f} "
            f"| {100 * r['delta']:+.1f} ({100 * r['worstDelta']:+.1f}) | {cut} | {r['honestDown']:.2f} "
            f"| {r['honestSlashed']} | {r['attackersSlashed'] if r['attack'] != 'clean' else ''} |"
        )
    return "\n".join(lines)


def wide_table(rows: list[dict[str, Any]]) -> str:
    """One line per (rule, split, attack), the attacker fractions side by side."""
    fractions = sorted({r["fraction"] for r in rows if r["attack"] != "clean"})
    cols = " | ".join(f"{f:.0%}: Δ (worst), cut" for f in fractions)
    lines = [f"| rule | split | attack | final acc (clean) | {cols} | honest ↓ | honest slashed |",
             "|" + "---|" * (6 + len(fractions))]  # fmt: skip
    keyed = {(r["rule"], r["split"], r["attack"], r["fraction"]): r for r in rows}
    for rule, split, attack in sorted({(r["rule"], r["split"], r["attack"]) for r in rows}):
        if attack == "clean":
            continue
        cells, same = [], [keyed[k] for k in keyed if k[:3] == (rule, split, attack)]
        for f in fractions:
            r = keyed.get((rule, split, attack, f))
            cells.append(
                f"{100 * r['delta']:+.1f} ({100 * r['worstDelta']:+.1f}), {r['cutRounds']:.1f}" if r else ""
            )
        name = "IID" if split == "iid" else f"Dir({split})"
        clean = same[0]["clean"]
        final = "/".join(f"{r['final']:.3f}" for r in sorted(same, key=lambda r: r["fraction"]))
        lines.append(
            f"| {rule} | {name} | {attack} | {final} ({clean:.3f}) | {' | '.join(cells)} "
            f"| {max(r['honestDown'] for r in same):.2f} | {sum(r['honestSlashed'] for r in same)} |"
        )
    return "\n".join(lines)


def configs(opt: argparse.Namespace) -> list[Config]:
    common = {"participants": opt.participants, "rounds": opt.rounds, "epochs": opt.epochs, "lr": opt.lr,
              "spread": opt.spread, "root": opt.root}  # fmt: skip
    out = []
    for rule in opt.rules.split(","):
        for split in opt.splits.split(","):
            for seed in range(opt.seeds):
                clean = Config(rule, split, seed, **common)
                out.append(clean)
                if opt.clean_only:
                    continue
                for attack in opt.attacks.split(","):
                    for fraction in (float(f) for f in opt.fractions.split(",")):
                        out.append(Config(rule, split, seed, attack, fraction, **common))
    return out


def main(argv: list[str] | None = None) -> int:
    from fabricml.federation.attacks import ATTACKS
    from fabricml.federation.rulebook import DEFAULT_RULE

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rules", default=DEFAULT_RULE, help="comma-separated task rules")
    p.add_argument("--attacks", default=",".join(ATTACKS), help=f"of {', '.join(ATTACKS)}, or {ABSENT}")
    p.add_argument("--fractions", default=",".join(str(f) for f in FRACTIONS))
    p.add_argument("--splits", default=",".join(SPLITS), help="iid and/or Dirichlet alphas")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--participants", type=int, default=10)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--spread", type=float, default=0.3, help="attackers' jitter, times the honest std")
    p.add_argument("--root", type=int, default=0, help="rows of a root dataset (0: none)")
    p.add_argument("--clean-only", action="store_true", help="only clean runs (false-slash check)")
    p.add_argument("--workers", type=int, default=2, help="at most 2")
    p.add_argument("--json", type=Path, help="write every run and the summary here")
    p.add_argument("--wide", action="store_true", help="attacker fractions side by side")
    p.add_argument("--from-json", type=Path, help="print the tables of an earlier --json run")
    opt = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if opt.from_json:
        results = json.loads(opt.from_json.read_text())["runs"]
    else:
        results = run_all(configs(opt), opt.workers)
    rows = summarize(results)
    print(wide_table(rows) if opt.wide else table(rows))
    clean = [r for r in results if not r["config"]["attack"]]
    falsely = sum(len(r["honestSlashed"]) for r in clean)
    print(f"\n{len(clean)} clean runs: {falsely} honest participants slashed")
    if opt.json:
        opt.json.write_text(json.dumps({"rows": rows, "runs": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
