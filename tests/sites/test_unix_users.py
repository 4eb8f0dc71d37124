"""Issue 12's consortium from founding to a member's removal, on the real network, every
step by the CLI as the acting site's own Unix user. Three organizations, three Unix users,
three loopback addresses: they exchange only bundles, the genesis block, the definition and
signed files, found the consortium, commit and upgrade the chaincode by per-org approvals,
train a model in a federated task (each org's agent as its user) and serve it with an
attested answer that another org verifies. A fourth user's site is added by a proposal
(one signature of three is refused by the orderer, two apply), becomes a consenter, joins,
endorses, trains in a new task and approves its model. Then org3 is removed and its peer can
no longer endorse. No site holds another's private key or secret, and no site's process runs
as another site's user."""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from fabricml.federation.data import Dataset
from tests.sites import unixgovernance as gov
from tests.sites import unixtasks as tasks
from tests.sites.scan import assert_no_site_holds_anothers_secrets
from tests.sites.unixsites import UnixSites, unix_sites
from tests.sites.unixtasks import view

pytestmark = [
    pytest.mark.network,
    pytest.mark.timeout(2400),
    pytest.mark.skipif(os.geteuid() != 0, reason="creating Unix users needs root (CI runs as root)"),
]
ORGS = ["org1", "org2", "org3"]
SHIFT = int(os.environ.get("FABRICML_TEST_PORT_SHIFT", "0"))
BASE = 26500 + SHIFT  # 26500-26899 on 127.0.91-94.1: ports and addresses nobody else's tests use


def _site_file(u_host: str, org: str, base: int) -> str:
    return f"name: {org}\nhost: {u_host}\nports:\n  base: {base}\norderers: 1\n"


def _found(env: UnixSites) -> dict[str, str]:
    """The three sites, founded; each bundle's fingerprint, as read out of band."""
    users = env.users
    for i, org in enumerate(ORGS):
        f = users[org].inbox / "site.yaml"
        f.write_text(_site_file(f"127.0.9{i + 1}.1", org, BASE + 100 * i))
        users[org].give(f)
    env.run_all(
        {
            o: [
                "site",
                "init",
                "--site-file",
                str(users[o].inbox / "site.yaml"),
                "--state-dir",
                str(users[o].site),
            ]
            for o in ORGS
        }
    )
    fingerprints = {}
    for org in ORGS:  # read out of band: the courier carries the fingerprint with the file
        out = env.run(org, "site", "export", "--state-dir", str(users[org].site))
        fingerprints[org] = out.stdout.strip().splitlines()[-1]
    for org in ORGS:
        for other in ORGS:
            if other != org:
                b = users[org].put(users[other].site / "outbox" / "bundle.json", f"{other}.bundle.json")
                env.run(
                    org,
                    "site",
                    "import",
                    str(b),
                    "--fingerprint",
                    fingerprints[other],
                    "--state-dir",
                    str(users[org].site),
                )
    founder = users["org1"]
    env.run(
        "org1",
        "consortium",
        "create",
        "--state-dir",
        str(founder.site),
        "--member",
        str(founder.inbox / "org2.bundle.json"),
        "--member",
        str(founder.inbox / "org3.bundle.json"),
    )
    for org in ORGS:
        users[org].put(founder.site / "outbox" / "consortium.block")
        users[org].put(founder.site / "outbox" / "definition.json")
    env.run_all(
        {
            o: [
                "site",
                "join",
                "--genesis",
                str(users[o].inbox / "consortium.block"),
                "--definition",
                str(users[o].inbox / "definition.json"),
                "--state-dir",
                str(users[o].site),
                "--yes",
            ]
            for o in ORGS
        }
    )
    env.run("org1", "chaincode", "commit", "--state-dir", str(founder.site))
    env.run_all({o: ["site", "up", "--state-dir", str(users[o].site)] for o in ORGS})
    return fingerprints


def _committed(env: UnixSites, org: str) -> str:
    statuses = json.loads(
        env.run(org, "site", "status", "--state-dir", str(env.users[org].site), "--json").stdout
    )
    return str(next(s["extra"].get("chaincode", "") for s in statuses if s["kind"] == "peer"))


def _upgrade_by_per_org_approval(env: UnixSites) -> None:
    u = env.users
    env.run("org1", "chaincode", "upgrade", "--version", "1.1", "--state-dir", str(u["org1"].site))
    refused = env.run("org1", "chaincode", "commit", "--state-dir", str(u["org1"].site), check=False)
    assert refused.returncode == 1 and "1 approval(s) of the 2 needed" in refused.stderr, refused.stderr
    assert _committed(env, "org1") == "1.0 (sequence 1)"
    env.run("org2", "chaincode", "upgrade", "--version", "1.1", "--state-dir", str(u["org2"].site))
    env.run("org1", "chaincode", "commit", "--state-dir", str(u["org1"].site))
    assert _committed(env, "org3") == "1.1 (sequence 2)"
    # org3 missed the upgrade: it approves the committed definition, then switches its server.
    env.run("org3", "chaincode", "upgrade", "--version", "1.1", "--state-dir", str(u["org3"].site))
    env.run_all({o: ["site", "up", "--state-dir", str(u[o].site)] for o in ORGS})
    org3 = [*view(env, "org3"), "--identity", "admin"]
    env.run("org3", "tx", "submit", "Consortium:Join", "Org Three on 1.1", *org3)
    info = json.loads(env.run("org3", "tx", "evaluate", "Consortium:Info", *org3).stdout)
    assert info == {"version": "1.1", "members": 3}


def _owned_and_private(env: UnixSites) -> None:
    for u in env.users.values():
        st = u.site.stat()
        assert st.st_uid == u.uid and stat.S_IMODE(st.st_mode) == 0o700, (u.org, oct(st.st_mode))
        for name, record in json.loads((u.site / "processes.json").read_text()).items():
            uid = Path(f"/proc/{record['pid']}").stat().st_uid
            assert uid == u.uid, f"{name} of {u.org} runs as uid {uid}, not {u.uid}"


def _approve(env: UnixSites, ref: str, approvers: list[str]) -> list[str]:
    """Each approver's admin approves on its own site; the status after each approval."""
    return [env.json(o, "model", "approve", ref, *view(env, o))["status"] for o in approvers]


def _attested_answer(env: UnixSites, model: str, test: Dataset) -> None:
    """org2 serves the approved model on its own address as its user; org3 asks it and
    receives an anchored receipt; org1 verifies the receipt it was handed."""
    u, port = env.users, BASE + 100 + 41
    where = ["--host", "127.0.92.1", "--port", str(port), "--anchor-ms", "200"]
    log = env.root / "logs" / "serve-org2.log"
    service = env.start("org2", log, "serve", *view(env, "org2"), "--model", model, *where)
    try:
        inputs = u["org3"].inbox / "inputs.json"
        inputs.write_text(json.dumps({"inputs": test.features[:8].tolist()}))
        u["org3"].give(inputs)
        receipt = u["org3"].inbox / "receipt.json"
        ask = ["--service-org", "org2", "--inputs", str(inputs), "--out", str(receipt), "--wait", "120"]
        answer = env.json("org3", "attest", "ask", f"https://127.0.92.1:{port}", *ask, *view(env, "org3"))
        assert len(answer["outputs"]) == 8, answer
    finally:
        service.terminate()
        service.wait(timeout=60)
    checks = env.json("org1", "attest", "verify", str(u["org1"].put(receipt, "org2-receipt.json")),
                      *view(env, "org1"), check=False)  # fmt: skip
    assert checks["ok"], checks
    passed = {c["check"] for c in checks["checks"] if c["ok"]}
    assert passed >= {"signature", "certificate chain", "inclusion proof", "anchored on the ledger"}, checks


def _first_task(env: UnixSites) -> None:
    """Three orgs train; the final model is approved by a majority and served."""
    tasks.mint(env, "first", ["org1", "org2"], {o: 200 for o in ORGS})
    plan = tasks.TaskPlan("unix-first", "org1", ("org1", "org2", "org3"))
    data, test = tasks.prepare(env, plan)
    model = tasks.assert_finalized(tasks.run(env, plan, data, env.root / "logs"), plan)
    assert _approve(env, model, ["org2", "org3"]) == ["registered", "approved"]
    _attested_answer(env, model, test)


def _fourth_org(env: UnixSites) -> None:
    """org4's site joins by majority; MAJORITY is three of four now, and org4's counts."""
    env.add("org4")
    fingerprint = gov.init_site(env, "org4", "127.0.94.1", BASE + 300)
    for org in ORGS:
        gov.import_bundle(env, "org4", org, env.fingerprints[org])
    gov.add_by_majority(env, "org4", fingerprint)
    gov.make_consenter(env, "org4")
    gov.join_with_latest_config(env, "org4")
    assert gov.members_seen(env, "org1") == ["Org1MSP", "Org2MSP", "Org3MSP", "Org4MSP"]
    gov.members_seen(env, "org2")  # its view (and artifact store) take in org4 for the task
    assert gov.heartbeat(env, "org4") == "VALID"
    assert gov.heartbeat(env, "org1", "Org1MSP", "Org2MSP", "Org4MSP") == "VALID"
    assert gov.heartbeat(env, "org1", "Org1MSP", "Org2MSP") == "ENDORSEMENT_POLICY_FAILURE"


def _task_with_the_newcomer(env: UnixSites) -> None:
    """org4 is minted its stake by three of four votes, trains with org1 and org2, and its
    approval is one of the three its task's model needs."""
    tasks.mint(env, "second", ["org1", "org2", "org4"], {"org4": 100})
    plan = tasks.TaskPlan("unix-second", "org1", ("org1", "org2", "org4"))
    data, _ = tasks.prepare(env, plan)
    model = tasks.assert_finalized(tasks.run(env, plan, data, env.root / "logs"), plan)
    assert _approve(env, model, ["org4", "org2", "org3"]) == ["registered", "registered", "approved"]
    record = env.json("org1", "model", "show", model, *view(env, "org1"))
    approvals = record.get("approvals") or record.get("record", {}).get("approvals")
    assert sorted(a["mspId"] for a in approvals) == ["Org2MSP", "Org3MSP", "Org4MSP"], record


def _remove_org3(env: UnixSites) -> None:
    gov.remove(env, "org3", ["org1", "org2", "org4"])
    assert gov.members_seen(env, "org1") == ["Org1MSP", "Org2MSP", "Org4MSP"]
    assert gov.heartbeat(env, "org1", "Org1MSP", "Org4MSP") == "VALID"
    removed_endorses = gov.heartbeat(env, "org1", "Org1MSP", "Org3MSP")
    removed_submits = gov.heartbeat(env, "org3")
    print(
        f"after the removal: endorsed by Org3MSP -> {removed_endorses}; Org3MSP's admin -> {removed_submits}"
    )
    # Its peer is out of the channel: no endorsement from it, none through it (measured:
    # the Gateway's EndorseError in both cases).
    assert removed_endorses == "EndorseError" and removed_submits == "EndorseError"
    trail = sorted((p["kind"], p["status"]) for p in gov.consortium(env, "org1", "proposals"))
    kinds = ["add-org", "consenter-add", "consenter-remove", "remove-org"]
    assert trail == [(k, "applied") for k in kinds], trail


def test_a_consortium_of_unix_user_sites_trains_serves_takes_in_a_fourth_org_and_removes_one() -> None:
    with unix_sites(ORGS, ("1.0", "1.1")) as env:
        with _step("found the consortium"):
            env.fingerprints = _found(env)
            _owned_and_private(env)
        with _step("upgrade the chaincode by per-org approvals"):
            _upgrade_by_per_org_approval(env)
        with _step("federated task of three, its model approved and served"):
            _first_task(env)
        with _step("a fourth org added by majority, its orderer a consenter, joined"):
            _fourth_org(env)
        with _step("a task with the fourth org, its model approved with it"):
            _task_with_the_newcomer(env)
        with _step("org3 removed"):
            _remove_org3(env)
        with _step("every site private; no site holds another's secret"):
            _owned_and_private(env)
            assert_no_site_holds_anothers_secrets({u.org: u.site for u in env.users.values()})


@contextmanager
def _step(name: str) -> Iterator[None]:
    """Print how long each step of the consortium's life took."""
    began = time.monotonic()
    yield
    print(f"[{time.monotonic() - began:6.1f} s] {name}", flush=True)
