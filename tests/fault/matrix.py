"""The fault matrix of issue 16: a kind of node × a moment of the work, one cell each.

A cell kills org2's node of that kind (or the Raft leader, or a follower orderer) with
SIGKILL the moment the work gets there, restarts it after a pause, and then reads back
from the ledger what must hold: the task done with every round FINALIZED and no one
slashed, every receipt served anchored exactly once, every claim answered once per org,
tokens conserved, every node running. The task moments run `fabricml fed demo`; the
serving moments run each org's inference service on a small approved model.

tests/fault/test_fault_matrix.py runs a few cells in CI; bench/fault_matrix.py all."""

from __future__ import annotations

import os
import signal
import threading
import time
import urllib.error
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fabricml.attest.receipts import payload_digest
from fabricml.contracts import AttestationClient, open_contract
from fabricml.gateway import EvaluateError
from fabricml.gateway.profile import ConnectionProfile
from fabricml.network.network import Network
from tests.fault.demo import Demo, start_demo, wait_for_task
from tests.fault.invariants import Auditor, anchored_receipts, read_ledger
from tests.fault.nodes import PAUSE, kill, not_running, raft_leader, restart, wait_for_revocation_lists
from tests.fault.services import FEATURES, Service, http, register_model
from tests.processes import children

VICTIM_ORG = "org2"  # org3 is the auditor's, org1 the demo's first admin: org2's nodes die
KINDS = ("peer", "orderer", "leader", "ca", "chaincode", "artifacts", "api", "agent", "inference")
TASK_MOMENTS = ("join", "commit", "reveal", "post", "registration", "approval")
SERVING_MOMENTS = ("anchoring", "claim")
MOMENTS = (*TASK_MOMENTS, *SERVING_MOMENTS)
ROUNDS = 2
MODEL = "fault-matrix@1"  # what the serving moments serve


@dataclass(frozen=True)
class Cell:
    kind: str
    moment: str

    @property
    def name(self) -> str:
        return f"{self.kind}@{self.moment}"

    @staticmethod
    def parse(name: str) -> Cell:
        kind, _, moment = name.partition("@")
        if kind not in KINDS or moment not in MOMENTS or Cell(kind, moment) not in all_cells():
            raise ValueError(f"no cell {name!r}: <kind>@<moment>, kinds {KINDS}, moments {MOMENTS}")
        return Cell(kind, moment)


def all_cells() -> list[Cell]:
    """Every cell that exists: agents live only while a task runs (they have ended when
    the demo approves), services only after."""
    agents = set(TASK_MOMENTS) - {"approval"}
    return [
        Cell(k, m)
        for m in MOMENTS
        for k in KINDS
        if (k != "agent" or m in agents) and (k != "inference" or m in SERVING_MOMENTS)
    ]


@dataclass
class Outcome:
    cell: Cell
    victim: str = ""
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0
    facts: dict[str, Any] = field(default_factory=dict)  # what was checked, in figures

    @property
    def survived(self) -> bool:
        return not self.violations

    def to_json(self) -> dict[str, Any]:
        return {"cell": self.cell.name, "victim": self.victim, "survived": self.survived,
                "seconds": round(self.seconds, 1), "violations": self.violations, **self.facts}  # fmt: skip


def check(outcome: Outcome, what: str, ok: bool, detail: object = "") -> None:
    """Record a violated invariant (the matrix goes on; a test asserts none at the end)."""
    if not ok:
        outcome.violations.append(f"{what}: {detail}"[:2000])


# ---- moments of a task -------------------------------------------------------------------


def _settled(auditor: Auditor, task: str, round_: int) -> bool:
    try:
        auditor.call("Federation", "GetRound", task, str(round_))
    except EvaluateError:
        return False
    return True


def task_moment(moment: str, auditor: Auditor, task: str) -> Callable[[dict[str, Any]], bool]:
    """When the task has got to `moment` (read through the auditor)."""

    def posted(t: dict[str, Any]) -> bool:
        return t["status"] == "running" and bool(
            auditor.call("Federation", "Aggregates", task, str(t["round"]))
        )

    moments: dict[str, Callable[[dict[str, Any]], bool]] = {
        "join": lambda t: t["status"] == "enrolling" and len(t["participants"]) >= 1,
        "commit": lambda t: (
            t["status"] == "running"
            and len(auditor.call("Federation", "Commitments", task, str(t["round"]))) >= 1
        ),
        "reveal": lambda t: t["status"] == "running" and t["phase"] == "AGGREGATE",
        "post": posted,
        "registration": lambda t: t["status"] == "done" or _settled(auditor, task, 1),
        "approval": lambda t: t["status"] == "done",
    }
    return moments[moment]


# ---- victims -----------------------------------------------------------------------------


def victim(net: Network, kind: str) -> str:
    """The node a cell kills: org2's of that kind, the current Raft leader, or a follower."""
    if kind == "leader":
        return raft_leader(net)
    if kind == "orderer":
        leader = raft_leader(net)
        followers = [o.name for o in net.topology.orderers if o.name != leader]
        return next((n for n in followers if net.node(n).org == VICTIM_ORG), followers[0])
    if kind == "peer":
        return net.topology.org(VICTIM_ORG).peer_name
    names = [n.name for n in net.nodes() if n.kind == kind and n.org == VICTIM_ORG]
    if not names:
        raise ValueError(f"{VICTIM_ORG} runs no node of kind {kind}")
    return names[0]


def agent_pid(demo: Demo, org: str = VICTIM_ORG) -> int:
    """The demo's agent process for `org` (a child of the demo's process)."""
    for pid in children(demo.proc.pid):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"agent" in argv and b"run" in argv and org.encode() in argv:
            return pid
    raise AssertionError(f"the demo runs no agent of {org}")


def crash_node(net: Network, name: str, pause: float) -> None:
    kill(net, name)
    time.sleep(pause)
    restart(net, name)


# ---- a task cell -------------------------------------------------------------------------


def run_task_cell(net: Network, auditor: Auditor, cell: Cell, pause: float = PAUSE) -> Outcome:
    """`fabricml fed demo`, a kill at the cell's moment, the demo to its end, the checks.
    An agent is restarted by the demo itself (--restart-agents 1), a node by the operator."""
    outcome, started = Outcome(cell), time.monotonic()
    extra = ("--restart-agents", "1") if cell.kind == "agent" else ()
    demo = start_demo(net, ROUNDS, *extra)
    outcome.facts["task"] = demo.task
    try:
        wait_for_task(auditor, demo, task_moment(cell.moment, auditor, demo.task))
        if cell.kind == "agent":
            outcome.victim = f"agent of {VICTIM_ORG}"
            os.kill(agent_pid(demo), signal.SIGKILL)
        else:
            outcome.victim = victim(net, cell.kind)
            crash_node(net, outcome.victim, pause)
        summary = demo.finish(timeout=900)
    except AssertionError as exc:
        check(outcome, "the demo", False, exc)
        summary = {}
    finally:
        demo.stop()
    if summary:
        check(outcome, "deployable", summary.get("deployable") is True, summary.get("deployable"))
    check_task(outcome, auditor, demo.task)
    check_ledger(outcome, net, auditor)
    outcome.seconds = time.monotonic() - started
    return outcome


def check_task(outcome: Outcome, auditor: Auditor, task: str, rounds_: int = ROUNDS) -> None:
    try:
        rounds = auditor.check_task(task, rounds_)
        outcome.facts["rounds"] = [r["status"] for r in rounds]
    except (AssertionError, EvaluateError) as exc:
        check(outcome, "every round FINALIZED, no one slashed", False, exc)


def check_ledger(outcome: Outcome, net: Network, auditor: Auditor) -> None:
    """Tokens conserved, no receipt anchored twice, every node running again."""
    ledger = read_ledger(auditor.network)
    minted, held = auditor.token_accounts(ledger)
    outcome.facts["tokens"] = {"minted": minted, "held": held}
    check(outcome, "tokens conserved", minted == held, f"{minted} minted, {held} held")
    twice = [r for r, n in anchored_receipts(ledger).items() if n > 1]
    check(outcome, "no receipt anchored twice", not twice, twice[:10])
    down = not_running(net)
    check(outcome, "every node running", not down, down)


# ---- a serving cell ----------------------------------------------------------------------


@dataclass
class Serving:
    """Every org's inference service on MODEL, kept across serving cells."""

    net: Network
    work: Path
    services: dict[str, Service] = field(default_factory=dict)

    def start(self, orgs: list[str]) -> None:
        """The services of `orgs` running (a claim needs every org's, anchoring org2's)."""
        if not self.services:
            register_model(self.net, MODEL)
        down = []
        for org in orgs:
            s = self.services.setdefault(org, Service(self.net, org, MODEL, self.work, "admin"))
            if s.proc is None or s.proc.poll() is not None:
                s.launch()  # all at once: each loads torch and the model
                down.append(s)
        for s in down:
            s.wait_serving()

    def stop(self) -> None:
        for s in self.services.values():
            s.stop()


def run_serving_cell(
    net: Network, auditor: Auditor, serving: Serving, cell: Cell, pause: float = PAUSE
) -> Outcome:
    """The services up (once), a kill while they anchor receipts or attest a claim, the checks."""
    outcome, started = Outcome(cell), time.monotonic()
    try:
        orgs = [o.name for o in net.topology.organizations]
        serving.start([VICTIM_ORG] if cell.moment == "anchoring" else orgs)
        if cell.moment == "anchoring":
            _anchoring(outcome, auditor, serving, pause)
        else:
            _claim(outcome, auditor, serving, pause)
    except (AssertionError, OSError, RuntimeError) as exc:
        check(outcome, cell.moment, False, exc)
    check_ledger(outcome, net, auditor)
    outcome.seconds = time.monotonic() - started
    return outcome


def _crash(outcome: Outcome, serving: Serving, pause: float) -> None:
    if outcome.cell.kind == "inference":
        outcome.victim = f"inference.{VICTIM_ORG}"
        s = serving.services[VICTIM_ORG]
        s.kill()
        time.sleep(pause)
        s.start()
    else:
        outcome.victim = victim(serving.net, outcome.cell.kind)
        crash_node(serving.net, outcome.victim, pause)


def _ask(service: Service, served: list[int], stop: threading.Event) -> None:
    """One prediction every 0.2 s until told to stop; the receipt numbers it got."""
    row = [[0.01 * i for i in range(FEATURES)]]
    while not stop.is_set():
        try:
            served.append(
                int(
                    http("POST", f"{service.url}/v1/predict", service.tls, {"inputs": row})["receipt"][
                        "sequence"
                    ]
                )
            )
        except OSError:
            time.sleep(1)  # this service is the one down
        time.sleep(0.2)


def _anchoring(outcome: Outcome, auditor: Auditor, serving: Serving, pause: float) -> None:
    """Predictions on org2's service throughout; the kill while receipts await anchoring;
    then every receipt served must be in exactly one anchored batch."""
    served: dict[str, list[int]] = {VICTIM_ORG: []}
    stop = threading.Event()
    askers = [threading.Thread(target=_ask, args=(serving.services[o], served[o], stop)) for o in served]
    for t in askers:
        t.start()
    try:
        time.sleep(3)
        _crash(outcome, serving, pause)
        time.sleep(3)
    finally:
        stop.set()
        for t in askers:
            t.join()
    outcome.facts["receipts"] = {org: len(seqs) for org, seqs in served.items()}
    check(outcome, "every service answered", all(served.values()), outcome.facts["receipts"])
    for org, seqs in served.items():  # the last receipt's proof: everything before it is anchored
        if seqs:
            check(
                outcome,
                f"{org}'s last receipt anchored",
                serving.services[org].proof(max(seqs)) is not None,
                max(seqs),
            )
    covered = anchored_receipts(read_ledger(auditor.network))
    msp = {o.name: o.msp_id for o in serving.net.topology.organizations}
    counts = {(org, n): covered[(msp[org], "inference", n)] for org, seqs in served.items() for n in seqs}
    lost = [k for k, n in counts.items() if n == 0]
    check(outcome, "every receipt served anchored", not lost, lost[:10])
    outcome.facts["receiptsAnchored"] = sum(1 for n in counts.values() if n >= 1)


def _claim(outcome: Outcome, auditor: Auditor, serving: Serving, pause: float) -> None:
    """A claim that needs every org (k = 3), attested by each org's service while the
    victim is killed: accepted once all three are in, no org counted twice."""
    claim_id, inputs = open_claim(serving.net)
    answers: dict[str, str] = {}

    def attest(org: str) -> None:
        s, end = serving.services[org], time.monotonic() + 300
        url = f"{s.url}/v1/claims/{claim_id}"
        while time.monotonic() < end:
            try:  # the service rides out the ledger's outage within its retry budget (120 s)
                answers[org] = http("POST", url, s.tls, {"inputs": inputs}, timeout=200)["claim"]["status"]
                return
            except urllib.error.HTTPError as exc:  # 409: refused (e.g. this org's vote is in)
                answers[org] = f"{exc.code}: {exc.read().decode(errors='replace')[:300]}"
                if exc.code != 503:
                    return
            except OSError as exc:  # the service is the one down
                answers[org] = str(exc)
            time.sleep(2)

    killer = threading.Thread(target=_crash, args=(outcome, serving, pause))
    killer.start()
    time.sleep(0.5)  # the kill lands while the services attest
    voters = [threading.Thread(target=attest, args=(o.name,)) for o in serving.net.topology.organizations]
    for t in voters:
        t.start()
    for t in [killer, *voters]:
        t.join()
    claim = auditor.call("Attestation", "GetClaim", claim_id)
    votes = auditor.call("Attestation", "ClaimAttestations", claim_id) or []
    orgs = sorted(v["service"]["mspId"] for v in votes)
    outcome.facts["claim"] = {"status": claim["status"], "attestedBy": orgs, "answers": answers}
    check(outcome, "claim accepted", claim["status"] == "accepted", claim["status"])
    check(
        outcome,
        "one attestation from every org",
        orgs == sorted(o.msp_id for o in serving.net.topology.organizations),
        (orgs, answers),
    )


def _profile(net: Network, org: str) -> ConnectionProfile:
    return ConnectionProfile.load(net.layout.profile(net.topology.org(org)))


def open_claim(net: Network) -> tuple[str, list[list[float]]]:
    """org1's admin opens a claim on one row of MODEL's input that every org must attest
    (k = the number of orgs), paying 1.00."""
    inputs = [[0.5] * FEATURES]
    with open_contract(_profile(net, "org1"), "admin", AttestationClient) as attestation:
        claim = attestation.open_claim(
            f"c{uuid.uuid4().hex[:8]}",
            payload_digest({"inputs": inputs}),
            MODEL.split("@")[0],
            len(net.topology.organizations),
            "1.00",
        )
    return claim.id, inputs


# ---- BFT: one orderer of four down for a whole task --------------------------------------


def run_bft_task(net: Network, auditor: Auditor, rounds: int = 1) -> Outcome:
    """On a four-orderer BFT channel, the last orderer killed before the task is created
    and started again only after the task ended: the other three are a quorum (f = 1)."""
    outcome, started = Outcome(Cell("orderer", "whole task (BFT, 1 of 4 down)")), time.monotonic()
    outcome.victim = net.topology.orderers[-1].name
    # Without every member's list at every site, artifact stores may refuse (503) that
    # member's agents whatever the orderers do: a bring-up fault of its own, recorded here
    # (None: still missing after 20 s) so that a failure below can be told apart.
    waited = wait_for_revocation_lists(net, 20)
    outcome.facts["revocationListsSeconds"] = None if waited is None else round(waited, 1)
    kill(net, outcome.victim)
    demo = start_demo(net, rounds)
    outcome.facts["task"] = demo.task
    try:
        summary = demo.finish(timeout=900)
        check(outcome, "deployable", summary.get("deployable") is True, summary.get("deployable"))
        check(outcome, "the orderer stayed down", outcome.victim in not_running(net), not_running(net))
    except AssertionError as exc:
        check(outcome, "the demo", False, exc)
    finally:
        demo.stop()
        restart(net, outcome.victim)
    check_task(outcome, auditor, demo.task, rounds)
    check_ledger(outcome, net, auditor)
    outcome.seconds = time.monotonic() - started
    return outcome
