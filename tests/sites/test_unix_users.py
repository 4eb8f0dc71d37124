"""Three organizations, three Unix users, three loopback addresses: they exchange only
bundles, the genesis block and the definition, found the consortium, commit and upgrade the
chaincode by per-org approvals, and approve a model by majority. No site holds another's
private key or secret, and no site's process runs as another site's user."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tests.sites.scan import assert_no_site_holds_anothers_secrets
from tests.sites.unixsites import UnixSites, unix_sites

pytestmark = [
    pytest.mark.network,
    pytest.mark.timeout(2400),
    pytest.mark.skipif(os.geteuid() != 0, reason="creating Unix users needs root (CI runs as root)"),
]
ORGS = ["org1", "org2", "org3"]
SHIFT = int(os.environ.get("FABRICML_TEST_PORT_SHIFT", "0"))
BASE = 26500 + SHIFT  # on 127.0.91-93.1: ports and addresses nobody else's tests use


def _site_file(u_host: str, org: str, base: int) -> str:
    return f"name: {org}\nhost: {u_host}\nports:\n  base: {base}\norderers: 1\n"


def _found(env: UnixSites) -> None:
    users = env.users
    for i, org in enumerate(ORGS):
        f = users[org].inbox / "site.yaml"
        f.write_text(_site_file(f"127.0.9{i + 1}.1", org, BASE + 100 * i))
        os.chown(f, users[org].uid, users[org].uid)
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


def _view(env: UnixSites, org: str) -> list[str]:
    """The site read as a one-org consortium, for the product's own commands."""
    site = env.users[org].site
    return ["--topology", str(site / "topology.yaml"), "--state-dir", str(site), "--org", org]


def _model_approved_by_a_majority(env: UnixSites) -> None:
    model = env.users["org1"].inbox / "model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(os.urandom(2048))
    (model / "config.json").write_text('{"layers": 2}')
    for p in (model, model / "model.safetensors", model / "config.json"):
        os.chown(p, env.users["org1"].uid, env.users["org1"].uid)
    env.run(
        "org1", "model", "register", *_view(env, "org1"), "--name", "unix-sites", "--version", "1", str(model)
    )
    after_one = json.loads(
        env.run("org2", "model", "approve", "unix-sites@1", *_view(env, "org2"), "--json").stdout
    )
    assert after_one["status"] == "registered"
    after_two = json.loads(
        env.run("org3", "model", "approve", "unix-sites@1", *_view(env, "org3"), "--json").stdout
    )
    assert after_two["status"] == "approved"
    assert sorted(a["mspId"] for a in after_two["approvals"]) == ["Org2MSP", "Org3MSP"]


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
    org3 = [*_view(env, "org3"), "--identity", "admin"]
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


def test_three_sites_run_by_three_unix_users_found_a_consortium_and_govern_it_by_majority() -> None:
    with unix_sites(ORGS, ("1.0", "1.1")) as env:
        _found(env)
        _owned_and_private(env)
        _model_approved_by_a_majority(env)
        _upgrade_by_per_org_approval(env)
        _owned_and_private(env)
        assert_no_site_holds_anothers_secrets({u.org: u.site for u in env.users.values()})
