"""The federated demo end to end on the real network, as a user runs it: four
participants (two in org1), several rounds to FINALIZED, the global model registered
with its lineage, approved, and served with verified receipts; and an agent killed
in the middle of a round that resumes; and a demo whose agents die stops at once, naming
them, instead of waiting for the ledger."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import httpx

from fabricml.contracts import FederationClient
from fabricml.demo.admins import OrgAdmins, trainer_identities
from fabricml.demo.agents import AgentLaunch
from fabricml.demo.task import DemoOptions, open_task
from fabricml.federation.round_models import model_name, round_ref
from fabricml.network.network import Network
from tests.api.conftest import base_url, identity_files, tls_context
from tests.conftest import FABRICML, fabricml, network_options
from tests.federation.conservation import assert_tokens_conserved
from tests.processes import children

PARTICIPANTS = ["org1/trainer", "org1/trainer2", "org2/trainer", "org3/trainer"]


def _net_args(network: Network) -> list[str]:
    return network_options(network)


def test_the_demo_trains_four_participants_to_a_registered_approved_served_model(network: Network) -> None:
    task = f"e2e-{uuid.uuid4().hex[:6]}"
    args = ["fed", "demo", *_net_args(network), "--rounds", "3", "--task", task, "--json"]
    for p in PARTICIPANTS:
        args += ["--participant", p]
    summary = json.loads(fabricml(*args, timeout=900).stdout)

    assert [r["status"] for r in summary["rounds"]] == ["FINALIZED"] * 3, summary["rounds"]
    for r in summary["rounds"]:
        # A quorum (two of three orgs) settles the round; a slower org's matching post may
        # come after the settlement and is then not among the agreeing.
        agreeing = set(r["agreeing"])
        assert agreeing <= {"Org1MSP", "Org2MSP", "Org3MSP"} and len(agreeing) >= 2 and not r["slashed"], r
        assert len(r["rewards"]) == 4 and sum(r["rewards"].values()) == 30
    curve = summary["globalCurve"]
    assert [p["round"] for p in curve] == [0, 1, 2, 3]
    assert curve[-1]["testAccuracy"] > 0.8 and curve[-1]["testAccuracy"] > curve[0]["testAccuracy"] + 0.5, (
        curve
    )

    final = summary["model"]
    assert final == f"{model_name(task)}@r3" and summary["deployable"] is True
    lineage = json.loads(fabricml("model", "lineage", final, *_net_args(network), "--json").stdout)
    text = json.dumps(lineage)
    for r in (1, 2, 3):
        assert f"{task}/{r}" in text, f"round {r} missing from the lineage"
    assert round_ref(task, 0) in text
    record = json.loads(fabricml("model", "show", final, *_net_args(network), "--json").stdout)
    datasets = record.get("datasets") or record.get("record", {}).get("datasets")
    assert datasets is not None and len(datasets) == 4, record

    assert [i["org"] for i in summary["inference"]] == ["org1", "org2", "org3"]
    assert all(i["receiptVerified"] and i["answers"] == 16 for i in summary["inference"])
    verified = fabricml("attest", "verify", summary["inference"][1]["receipt"], *_net_args(network))
    assert "receipt verified" in verified.stdout

    # The same facts through org3's admin API, as its auditor sees them.
    with httpx.Client(
        base_url=base_url(network, "org3"),
        verify=tls_context(network, "org3", *identity_files(network, "org3", "auditor")),
        timeout=120,
    ) as api:
        rounds = api.get(f"/api/v1/federation/tasks/{task}/rounds")
        assert rounds.status_code == 200, rounds.text
        views = rounds.json()
        assert [v["state"] for v in views] == ["FINALIZED"] * 3 and len(views[0]["commitments"]) == 4
        assert all(0 < v["metrics"]["heldoutAccuracy"] <= 1 for v in views), views
        bundle = json.loads(Path(summary["inference"][0]["receipt"]).read_text())
        checked = api.post("/api/v1/attestations/verify", json=bundle)
        assert checked.status_code == 200 and checked.json()["ok"] is True, checked.text
        bundle["receipt"]["outputDigest"] = "0" * 64
        forged = api.post("/api/v1/attestations/verify", json=bundle)
        assert forged.status_code == 200 and forged.json()["ok"] is False, forged.text

    plot = Path(summary["plot"])
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 20_000
    agents = sorted((network.layout.root / "federated" / task / "agents").glob("*/metrics.jsonl"))
    assert len(agents) == 4
    for m in agents:
        lines = [json.loads(x) for x in m.read_text().splitlines()]
        assert [x["round"] for x in lines] == [1, 2, 3] and all(x["heldoutAccuracy"] > 0 for x in lines)
    left = [
        cmd
        for cmd in _command_lines()
        if (task in cmd or " serve " in cmd) and str(network.layout.root) in cmd
    ]
    assert not left, f"agent or service processes left behind: {left}"
    with OrgAdmins.open(network) as c:
        assert_tokens_conserved(c)


def _command_lines() -> list[str]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                out.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                continue
    return out


def test_an_agent_killed_mid_round_resumes_and_the_task_finishes(network: Network, tmp_path: Path) -> None:
    opt = DemoOptions(rounds=2, epochs=2, task=f"crash-{uuid.uuid4().hex[:6]}", serve=False)
    with OrgAdmins.open(network) as c:
        members = trainer_identities(c, opt.participants, opt.participants_per_org)
        files, _ = open_task(c, opt, members, log=lambda _: None)
        logs = [tmp_path / f"agent-{i}.log" for i in range(len(members))]
        fed = c.client("org1", "auditor", FederationClient)

        def launch(i: int) -> subprocess.Popen[bytes]:
            org, identity = members[i]
            agent = AgentLaunch(org, identity, opt.task, files[i], opt.epochs, opt.lr, opt.seed)
            return subprocess.Popen(
                agent.command(network), stdout=logs[i].open("ab"), stderr=subprocess.STDOUT
            )

        procs = [launch(i) for i in range(len(members))]
        try:
            deadline = time.monotonic() + 300
            while len(fed.get_task(opt.task).participants) < 3:
                assert time.monotonic() < deadline, "participants did not join"
                time.sleep(0.5)
            c.client("org1", "admin", FederationClient).start(opt.task)
            # Kill org2's agent as soon as it committed round 1 (it may have published too).
            while "round 1: committed" not in logs[1].read_text():
                assert time.monotonic() < deadline and procs[1].poll() is None, logs[1].read_text()
                time.sleep(0.1)
            procs[1].send_signal(signal.SIGKILL)
            procs[1].wait()
            before = logs[1].read_text()
            procs[1] = launch(1)
            for p in procs:
                assert p.wait(timeout=600) == 0, [x.read_text()[-2000:] for x in logs]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        rounds = [fed.get_round(opt.task, r) for r in (1, 2)]
    assert [r.status for r in rounds] == ["FINALIZED", "FINALIZED"], rounds
    assert not any(r.slashed for r in rounds), "the restarted agent must publish what it committed"
    after = logs[1].read_text()[len(before) :]
    assert "round 1: training" not in after, "the restarted agent must not train round 1 again"
    # It served the bytes it committed, before the kill (when its commitment was the last
    # one, the commitments closed at once) or after the restart: no one reported it missing.
    assert "round 1: published" in logs[1].read_text() and not any(r.missing for r in rounds)
    with OrgAdmins.open(network) as c:
        assert_tokens_conserved(c)


def test_a_demo_whose_agents_die_stops_at_once_naming_them_with_their_logs(network: Network) -> None:
    task = f"dead-{uuid.uuid4().hex[:6]}"
    args = [
        "fed",
        "demo",
        *_net_args(network),
        "--rounds",
        "2",
        "--epochs",
        "1",
        "--task",
        task,
        "--no-serve",
    ]
    demo = subprocess.Popen(
        [*FABRICML, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(demo.stdout or []), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 300
        while not any("round 1 started" in line for line in lines):
            assert demo.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.2)
        agents = [p for p in children(demo.pid) if b"agent\0run" in Path(f"/proc/{p}/cmdline").read_bytes()]
        assert len(agents) == 3, agents
        for pid in agents:
            os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        code = demo.wait(timeout=60)
        noticed = time.monotonic() - killed
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    reader.join(10)
    out = "".join(lines)
    assert code == 1, out
    assert noticed < 20, f"the demo took {noticed:.0f}s to notice"
    for who in ("org1/trainer", "org2/trainer", "org3/trainer"):
        assert f"agent {who} was killed by SIGKILL" in out, out
    assert out.count("joined task") >= 3, f"the end of each agent's log is shown:\n{out}"
    left = [c for c in _command_lines() if task in c]
    assert not left, f"processes left behind: {left}"
