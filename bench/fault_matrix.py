"""The fault matrix of issue 16, cell by cell, on a consortium of its own.

Usage: .venv/bin/python bench/fault_matrix.py [--cells peer@join,leader@commit,...]
       [--kinds peer,orderer,...] [--moments join,commit,...] [--pause 10]
       [--base-port 31000] [--bft] [--no-matrix] [--json results.json] [--show results.json]

A cell is a kind of node (peer, orderer = a Raft follower, leader = the Raft leader, ca,
chaincode, artifacts, api, agent, inference) × a moment (join, commit, reveal, post,
registration, approval: of a 2-round `fabricml fed demo`; anchoring, claim: of every
org's inference service). Each cell kills org2's node of that kind with SIGKILL when the
work gets there, restarts it after --pause seconds (an agent is restarted by the demo,
`--restart-agents 1`), lets the work finish and reads back from the ledger: the task done,
every round FINALIZED, no one slashed, every receipt served anchored exactly once, the
claim attested once per org, tokens conserved, every node running. tests/fault/matrix.py
does the work; tests/fault runs a few cells in CI.

--bft also runs, on a four-orderer BFT network of its own, a 1-round task with one
orderer stopped from before the task is created until it ended.

Prints a line per cell as it ends and then a table (kinds × moments: ok or FAIL, the
cell's seconds); --json writes every outcome. Exits 1 if a cell failed."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.benchnet import bench_network, network_of  # noqa: E402
from fabricml.network.network import Network  # noqa: E402
from tests.fault.invariants import Auditor  # noqa: E402
from tests.fault.matrix import (  # noqa: E402
    KINDS,
    MOMENTS,
    TASK_MOMENTS,
    Cell,
    Outcome,
    Serving,
    all_cells,
    run_bft_task,
    run_serving_cell,
    run_task_cell,
)
from tests.fault.nodes import PAUSE  # noqa: E402


def chosen(args: argparse.Namespace) -> list[Cell]:
    if args.cells:
        return [Cell.parse(name) for name in args.cells.split(",")]
    kinds, moments = args.kinds.split(","), args.moments.split(",")
    return [c for c in all_cells() if c.kind in kinds and c.moment in moments]


def say(line: str) -> None:
    print(f"[matrix {time.strftime('%H:%M:%S')}] {line}", flush=True)


def run_matrix(net: Network, cells: list[Cell], pause: float, work: Path, out: Path | None) -> list[Outcome]:
    """Cell after cell; --json is rewritten after each, so a cut-short run keeps what it did."""
    outcomes: list[Outcome] = []
    serving = Serving(net, work)
    try:
        with Auditor(net, "org3") as auditor:
            for i, cell in enumerate(cells, 1):
                say(f"{i}/{len(cells)} {cell.name} ...")
                if cell.moment in TASK_MOMENTS:
                    outcome = run_task_cell(net, auditor, cell, pause)
                else:
                    outcome = run_serving_cell(net, auditor, serving, cell, pause)
                outcomes.append(outcome)
                verdict = "survived" if outcome.survived else "FAILED: " + "; ".join(outcome.violations)[:600]
                say(f"{i}/{len(cells)} {cell.name} ({outcome.victim}, {outcome.seconds:.0f}s): {verdict}")
                if out:
                    out.write_text(json.dumps([o.to_json() for o in outcomes], indent=1, default=str))
    finally:
        serving.stop()
    return outcomes


@contextmanager
def bft_network(base_port: int) -> Iterator[Path]:
    """tests/topologies/bft4.yaml on ports from `base_port`, always torn down."""
    text = (REPO / "tests" / "topologies" / "bft4.yaml").read_text()
    text = re.sub(r"(?m)^  base: \d+$", f"  base: {base_port}", text)
    with network_of("fabricml-bft-matrix", text) as state:
        yield state


def table(results: list[dict[str, Any]]) -> str:
    """Markdown: a row per kind, a column per moment; ok/FAIL and the cell's seconds
    (from Outcome.to_json(), so that a --json file can be shown again with --show)."""
    by = {(k, m): r for r in results for k, _, m in [r["cell"].partition("@")] if m in MOMENTS}
    moments = [m for m in MOMENTS if any(k[1] == m for k in by)]
    lines = ["| killed \\ at | " + " | ".join(moments) + " |", "|---" * (len(moments) + 1) + "|"]
    for kind in [k for k in KINDS if any(c[0] == k for c in by)]:
        found = [by.get((kind, m)) for m in moments]
        text = [
            "—" if r is None else f"{'ok' if r['survived'] else 'FAIL'} {r['seconds']:.0f}s" for r in found
        ]
        lines.append(f"| {kind} | " + " | ".join(text) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cells", default="", help="kind@moment,... (default: --kinds × --moments)")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--moments", default=",".join(MOMENTS))
    parser.add_argument("--pause", type=float, default=PAUSE, help="seconds a killed node stays down")
    parser.add_argument("--base-port", type=int, default=31000)
    parser.add_argument("--bft", action="store_true", help="also one BFT orderer of four down for a task")
    parser.add_argument("--no-matrix", action="store_true", help="only the BFT case")
    parser.add_argument("--json", type=Path, help="write every outcome here (after each cell)")
    parser.add_argument("--show", type=Path, help="only print the table of an earlier --json file")
    args = parser.parse_args()
    if args.show:
        print(table(json.loads(args.show.read_text())))
        return
    try:
        cells = [] if args.no_matrix else chosen(args)
    except ValueError as exc:
        parser.error(str(exc))
    if set(args.kinds.split(",")) - set(KINDS) or set(args.moments.split(",")) - set(MOMENTS):
        parser.error(f"--kinds from {','.join(KINDS)}; --moments from {','.join(MOMENTS)}")
    os.environ.setdefault("FABRICML_HOME", tempfile.mkdtemp(prefix="fabricml-home-"))
    outcomes: list[Outcome] = []
    started = time.monotonic()
    if cells:
        with bench_network("fabricml-matrix", args.base_port) as state, tempfile.TemporaryDirectory() as work:
            outcomes += run_matrix(Network.from_state(state), cells, args.pause, Path(work), args.json)
    if args.bft:
        with bft_network(args.base_port + 1000) as state:
            net = Network.from_state(state)
            say("BFT: one orderer of four stopped for a whole task ...")
            with Auditor(net, "org2") as auditor:
                outcomes.append(run_bft_task(net, auditor))
            o = outcomes[-1]
            say(f"BFT ({o.victim} down, {o.seconds:.0f}s): {'survived' if o.survived else o.violations}")
    print(table([o.to_json() for o in outcomes]))
    failed = [o for o in outcomes if not o.survived]
    minutes = (time.monotonic() - started) / 60
    print(f"{len(outcomes) - len(failed)} of {len(outcomes)} cells survived in {minutes:.1f} min")
    if args.json:
        args.json.write_text(json.dumps([o.to_json() for o in outcomes], indent=1, default=str))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
