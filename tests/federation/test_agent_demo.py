"""The federated demo end to end on the real network, as a user runs it: four
participants (two in org1), several rounds to FINALIZED, the global model registered
with its lineage, approved, and served with verified receipts; and an agent killed
in the middle of a round that resumes."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from pathlib import Path

import httpx

from fabricml.federation.agent import model_name
from fabricml.federation.demo import DemoOptions, agent_command, consortium, open_task, trainer_identities
from fabricml.network.network import Network
from tests.api.conftest import base_url, identity_files, tls_context
from tests.conftest import fabricml

PARTICIPANTS = ["org1/trainer", "org1/trainer2", "org2/trainer", "org3/trainer"]


def _net_args(network: Network) -> list[str]:
    return ["--topology", str(network.topology.source), "--state-dir", str(network.layout.root)]


def test_the_demo_trains_four_participants_to_a_registered_approved_served_model(network: Network) -> None:
    task = f"e2e-{uuid.uuid4().hex[:6]}"
    args = ["fed", "demo", *_net_args(network), "--rounds", "3", "--task", task, "--json"]
    for p in PARTICIPANTS:
        args += ["--participant", p]
    summary = json.loads(fabricml(*args, timeout=900).stdout)

    assert [r["status"] for r in summary["rounds"]] == ["FINALIZED"] * 3, summary["rounds"]
    for r in summary["rounds"]:
        assert sorted(r["agreeing"]) == ["Org1MSP", "Org2MSP", "Org3MSP"] and not r["slashed"]
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
    assert f"{model_name(task)}@r0" in text
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
    with consortium(network) as c:
        members = trainer_identities(c, opt)
        files, _ = open_task(c, opt, len(members), log=lambda _: None)
        logs = [tmp_path / f"agent-{i}.log" for i in range(len(members))]

        def launch(i: int) -> subprocess.Popen[bytes]:
            org, identity = members[i]
            cmd = agent_command(network, org, identity, opt.task, files[i], opt, [])
            return subprocess.Popen(cmd, stdout=logs[i].open("ab"), stderr=subprocess.STDOUT)

        procs = [launch(i) for i in range(len(members))]
        try:
            deadline = time.monotonic() + 300
            while (
                len(
                    c.call("org1", "auditor", "Federation", "GetTask", opt.task, submit=False)["participants"]
                )
                < 3
            ):
                assert time.monotonic() < deadline, "participants did not join"
                time.sleep(0.5)
            c.call("org1", "admin", "Federation", "Start", opt.task)
            # Kill org2's agent as soon as it committed round 1: it has not revealed yet.
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
        rounds = [
            c.call("org1", "auditor", "Federation", "GetRound", opt.task, str(r), submit=False)
            for r in (1, 2)
        ]
    assert [r["status"] for r in rounds] == ["FINALIZED", "FINALIZED"], rounds
    assert not any(r["slashed"] for r in rounds), "the restarted agent must reveal what it committed"
    after = logs[1].read_text()[len(before) :]
    assert "round 1: training" not in after, "the restarted agent must not train round 1 again"
    assert "round 1: revealed" in after
