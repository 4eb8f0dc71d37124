"""Soak: federated tasks and attested inference run without pause on a real consortium
while a random node is killed with SIGKILL and restarted every minute.

Usage: .venv/bin/python bench/soak.py [--minutes 5] [--interval 60] [--pause 10]
       [--kinds orderer,peer,chaincode,ca,artifacts,api,inference] [--seed 1] [--base-port 30000]

Brings up its own 3-org Raft consortium (ports from --base-port) in a temporary
directory and tears it down. Meanwhile `fabricml fed demo --no-serve` runs one small
task after another (3 agents, 2 rounds), and each org's `fabricml serve` answers a
prediction every 0.2 s with a signed receipt that it anchors in batches. One node at a
time is down: the chaos thread kills one (kill -9 by the pid the network recorded, or
an inference service it started), waits --pause seconds and restarts it.

At the end it prints tasks finished, receipts anchored, the errors clients saw (calls
the ledger layer retried, and failures that reached a client), the kills, and the
invariants read back from the blocks: tokens conserved, no receipt anchored twice or
lost, every round FINALIZED, no honest participant slashed. Exits 1 if one fails.
This is the full fault matrix; the suite runs a subset (tests/fault/)."""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import options  # noqa: E402
from bench.benchnet import bench_network  # noqa: E402
from fabricml.network.network import Network  # noqa: E402
from tests.fault.invariants import Auditor, anchored_receipts, read_ledger  # noqa: E402
from tests.fault.nodes import FABRICML, kill, restart  # noqa: E402
from tests.fault.services import Service, http, register_model  # noqa: E402

KINDS = ("orderer", "peer", "chaincode", "ca", "revocations", "artifacts", "api", "inference")
RETRIED = re.compile(r"failed \([A-Z_]+: .*\); try \d+ in ")  # fabricml.gateway.retry's warning
MODEL = "soak-model@1"


@dataclass
class Soak:
    net: Network
    work: Path
    args: argparse.Namespace
    stop: threading.Event = field(default_factory=threading.Event)
    counts: Counter[str] = field(default_factory=Counter)
    tasks: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    kills: list[dict[str, Any]] = field(default_factory=list)
    receipts: dict[str, list[tuple[str, str, int]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def where(self) -> list[str]:
        return ["--topology", str(self.net.topology.source), "--state-dir", str(self.net.layout.root)]

    def fail(self, what: str) -> None:
        with self.lock:
            self.failures.append(what)
        print(f"[soak] client failure: {what[:300]}", flush=True)


# ---- federated tasks ---------------------------------------------------------------------


def federated_loop(soak: Soak) -> None:
    """One small federated task after another until told to stop (the last one finishes)."""
    while not soak.stop.is_set():
        task = f"soak-{uuid.uuid4().hex[:6]}"
        out = soak.work / f"demo-{task}.out"
        argv = [*FABRICML, "fed", "demo", *soak.where(), "--rounds", str(soak.args.rounds), "--epochs", "1",
                "--dataset", "breast_cancer", "--no-serve", "--task", task, "--json"]  # fmt: skip
        with out.open("wb") as f:
            try:
                code = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, timeout=1800).returncode
            except subprocess.TimeoutExpired:
                code = -1
        with soak.lock:
            soak.tasks.append(task)
        if code == 0:
            soak.counts["tasks finished"] += 1
            print(f"[soak] task {task} finished", flush=True)
        else:
            soak.fail(f"demo {task} exited with {code}: {out.read_text()[-600:]}")


# ---- attested inference ------------------------------------------------------------------


def inference_loop(soak: Soak, service: Service, msp: str) -> None:
    rows = [[0.01 * i for i in range(30)]]
    while not soak.stop.is_set():
        try:
            receipt = http("POST", f"{service.url}/v1/predict", service.tls, {"inputs": rows})["receipt"]
            with soak.lock:
                soak.receipts.setdefault(service.org, []).append((msp, "inference", int(receipt["sequence"])))
            soak.counts["predictions answered"] += 1
        except OSError:
            soak.counts["predictions refused (service down)"] += 1
            time.sleep(1)
        time.sleep(0.2)


# ---- chaos -------------------------------------------------------------------------------


def victims(soak: Soak, services: dict[str, Service]) -> dict[str, list[str]]:
    """The nodes that may be killed, by kind."""
    kinds = soak.args.kinds.split(",")
    out = {k: [n.name for n in soak.net.nodes() if n.kind == k] for k in kinds if k != "inference"}
    if "inference" in kinds:
        out["inference"] = [f"inference.{o}" for o in services]
    return {k: names for k, names in out.items() if names}


def chaos_loop(soak: Soak, services: dict[str, Service], rng: random.Random) -> None:
    """Every --interval seconds (by the clock, however long a restart takes): a random
    kind, a random node of it, killed, left down --pause seconds, restarted."""
    begin, n = time.monotonic(), 0
    while True:
        n += 1
        if soak.stop.wait(max(0.0, begin + n * soak.args.interval - time.monotonic())):
            return
        by_kind = victims(soak, services)
        name = rng.choice(by_kind[rng.choice(sorted(by_kind))])
        started = time.monotonic()
        print(f"[soak] kill -9 {name}", flush=True)
        try:
            crash(soak, services, name)
        except Exception as exc:  # reported: the soak goes on without this node
            soak.fail(f"could not kill and restart {name}: {exc}")
        soak.kills.append({"node": name, "downSeconds": round(time.monotonic() - started, 1)})


def crash(soak: Soak, services: dict[str, Service], name: str) -> None:
    if name.startswith("inference."):
        service = services[name.removeprefix("inference.")]
        service.kill()
        time.sleep(soak.args.pause)
        service.start()
    else:
        kill(soak.net, name)
        time.sleep(soak.args.pause)
        restart(soak.net, name)


# ---- the end -----------------------------------------------------------------------------


def wait_anchored(soak: Soak, services: dict[str, Service], timeout: float = 180) -> None:
    """Until every service's last receipt has its anchored proof (not 202 pending)."""
    for org, service in services.items():
        last = max((s for _, _, s in soak.receipts.get(org, [])), default=None)
        if last is not None:
            service.proof(last, timeout)


def audit(soak: Soak) -> dict[str, Any]:
    with Auditor(soak.net, "org3") as auditor:
        ledger = read_ledger(auditor.network)
        minted, held = auditor.token_accounts(ledger)
        rounds = {t["id"]: auditor.rounds(t["id"]) for t in ledger.named("TaskCreated")}
    covered = anchored_receipts(ledger)
    served = [r for rs in soak.receipts.values() for r in rs]
    statuses = Counter(r["status"] for rs in rounds.values() for r in rs)
    return {
        "tokensConserved": minted == held,
        "tokens": {"minted": minted, "held": held},
        "receiptsServed": len(served),
        "receiptsAnchored": sum(1 for r in served if covered[r] >= 1),
        "receiptsLost": [r for r in served if covered[r] == 0][:20],
        "receiptsAnchoredTwice": [r for r, n in covered.items() if n > 1][:20],
        "rounds": dict(statuses),
        "slashed": sorted({s for rs in rounds.values() for r in rs for s in r["slashed"]}),
        "duplicateTransactions": ledger.duplicates,  # resubmitted envelopes, each without effect
        "blocks": ledger.height,
    }


def client_errors(soak: Soak) -> dict[str, int]:
    """Calls the ledger layer retried (from every client's log), and failures that surfaced."""
    retried = 0
    logs = [
        *soak.work.glob("*.out"),
        *soak.work.glob("*.log"),
        *soak.net.layout.root.glob("federated/*/*.log"),
    ]
    for log in logs:
        retried += sum(1 for line in log.read_text(errors="replace").splitlines() if RETRIED.search(line))
    return {"retriedByTheLedgerLayer": retried, "reachedAClient": len(soak.failures)}


def run(soak: Soak) -> dict[str, Any]:
    register_model(soak.net, MODEL)
    services = {o.name: Service(soak.net, o.name, MODEL, soak.work) for o in soak.net.topology.organizations}
    for s in services.values():
        s.start()
    threads = [threading.Thread(target=federated_loop, args=(soak,), name="federated")]
    for o in soak.net.topology.organizations:
        threads.append(threading.Thread(target=inference_loop, args=(soak, services[o.name], o.msp_id)))
    chaos = threading.Thread(target=chaos_loop, args=(soak, services, random.Random(soak.args.seed)))
    for t in [*threads, chaos]:
        t.start()
    try:
        soak.stop.wait(soak.args.minutes * 60)
    finally:
        soak.stop.set()
        chaos.join()
        for t in threads:
            t.join()
        wait_anchored(soak, services)
        for s in services.values():
            s.stop()
    return {"invariants": audit(soak), "clientErrors": client_errors(soak)}


def report(soak: Soak, result: dict[str, Any], seconds: float) -> bool:
    inv = result["invariants"]
    ok = (
        inv["tokensConserved"]
        and not inv["receiptsLost"]
        and not inv["receiptsAnchoredTwice"]
        and set(inv["rounds"]) <= {"FINALIZED"}
        and not inv["slashed"]
        and not soak.failures
    )
    summary = {
        "minutes": round(seconds / 60, 1),
        "tasksStarted": len(soak.tasks),
        **dict(soak.counts),
        "kills": Counter(k["node"].split(".")[0].rstrip("0123456789") for k in soak.kills),
        "killed": soak.kills,
        **result,
        "failures": soak.failures,
        "ok": ok,
    }
    print(json.dumps(summary, indent=1, default=str))
    return ok


def main() -> None:
    parser = options.parser(__doc__)
    parser.add_argument("--minutes", type=float, default=5.0, help="how long to inject faults")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between kills")
    parser.add_argument("--pause", type=float, default=10.0, help="seconds a killed node stays down")
    parser.add_argument("--kinds", default=",".join(KINDS), help="kinds of node to kill")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per federated task")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--base-port", type=int, default=30000)
    args = parser.parse_args()
    unknown = set(args.kinds.split(",")) - set(KINDS)
    if unknown or args.minutes <= 0 or args.interval <= args.pause:
        parser.error(f"--kinds from {','.join(KINDS)} (not {unknown}); --minutes > 0; --interval > --pause")
    started = time.monotonic()
    with bench_network("fabricml-soak", args.base_port) as state, tempfile.TemporaryDirectory() as work:
        soak = Soak(Network.from_state(state), Path(work), args)
        ok = report(soak, run(soak), time.monotonic() - started)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
