"""Membership changes among sites run by Unix users, every step by the CLI as the acting
site's user: a fourth org's site is sponsored by its signed bundle and added by a majority's
signatures (one signature of three is refused by the orderer), its orderer made a consenter,
it joins with the latest config block; later an org is removed, consenter first.

Only public files cross between sites, carried by the courier: bundles, the config block."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fabricml.network.bundle import read as read_bundle
from fabricml.network.processes import wait_until
from tests.sites.unixsites import UnixSites
from tests.sites.unixtasks import view


def site_dir(env: UnixSites, org: str) -> list[str]:
    return ["--state-dir", str(env.users[org].site)]


def consortium(env: UnixSites, org: str, *args: str, check: bool = True) -> Any:
    """`fabricml consortium ARGS --json` on the org's own site."""
    return env.json(org, "consortium", *args, *site_dir(env, org), check=check)


def init_site(env: UnixSites, org: str, host: str, base: int) -> str:
    """The org's own site (`site init`, `site export`); the fingerprint it reads out."""
    u = env.users[org]
    f = u.inbox / "site.yaml"
    f.write_text(f"name: {org}\nhost: {host}\nports:\n  base: {base}\norderers: 1\n")
    u.give(f)
    env.run(org, "site", "init", "--site-file", str(f), *site_dir(env, org))
    return str(env.run(org, "site", "export", *site_dir(env, org)).stdout.strip().splitlines()[-1])


def import_bundle(env: UnixSites, org: str, of: str, fingerprint: str) -> Path:
    """The courier hands `of`'s bundle to `org`, whose operator imports it, comparing the
    fingerprint read out of band."""
    b = env.users[org].put(env.users[of].site / "outbox" / "bundle.json", f"{of}.bundle.json")
    env.run(org, "site", "import", str(b), "--fingerprint", fingerprint, *site_dir(env, org))
    return b


def enact(env: UnixSites, kind: str, subject: str, signers: list[str], *extra: str) -> str:
    """Propose on the first signer's site, sign on each signer's own site, submit."""
    pid = str(consortium(env, signers[0], "propose", kind, subject, *extra)["id"])
    for org in signers:
        consortium(env, org, "sign", pid)
    consortium(env, signers[0], "submit", pid)
    return pid


def add_by_majority(env: UnixSites, newcomer: str, fingerprint: str) -> None:
    """org1 sponsors the newcomer by its bundle. A member that has not imported the bundle
    will not sign; one signature of three is refused by the orderer; two apply."""
    bundle = import_bundle(env, "org1", newcomer, fingerprint)
    proposal = consortium(env, "org1", "propose", "add-org", str(bundle), "--fingerprint", fingerprint)
    pid, msp = str(proposal["id"]), proposal["subject"]
    assert proposal["kind"] == "add-org" and msp == "Org4MSP", proposal

    refused = consortium(env, "org3", "sign", pid, check=False)
    assert f"has not imported {msp}'s bundle" in str(refused["message"]), refused
    consortium(env, "org1", "sign", pid)
    refused = consortium(env, "org1", "submit", pid, check=False)
    assert refused["status"] == "BAD_REQUEST", refused
    print(f"add-org with one signature of three, refused by the orderer: {refused['message']}")

    import_bundle(env, "org2", newcomer, fingerprint)
    consortium(env, "org2", "sign", pid)
    applied = consortium(env, "org2", "submit", pid)
    record = consortium(env, "org3", "show", pid)
    digest = read_bundle(bundle).bundle.digest
    assert record["status"] == "applied", record
    assert record["bundle"] == {"digest": digest, "fingerprint": fingerprint}, record["bundle"]
    assert record["org"]["groups"] == ["/Channel/Application/Org4MSP", "/Channel/Orderer/Org4MSP"], record
    print(f"add-org with two signatures of three: applied in config block {applied['blockNumber']}")


def make_consenter(env: UnixSites, newcomer: str) -> None:
    """The Orderer group has four orgs now: two signatures are refused, three apply."""
    bundle = env.users["org1"].inbox / f"{newcomer}.bundle.json"
    orderer = read_bundle(bundle).bundle.orderers[0].address
    pid = str(consortium(env, "org1", "propose", "consenter-add", orderer, "--bundle", str(bundle))["id"])
    for org in ("org1", "org2"):
        consortium(env, org, "sign", pid)
    refused = consortium(env, "org1", "submit", pid, check=False)
    assert "requires 3 of the 'Admins' sub-policies" in str(refused["message"]), refused
    consortium(env, "org3", "sign", pid)
    consortium(env, "org1", "submit", pid)


def join_with_latest_config(env: UnixSites, newcomer: str) -> None:
    """org1 hands the newcomer the latest config block; it reviews it and joins: its
    orderer an active consenter from that block, its peer from block 0."""
    out = env.users["org1"].inbox / "latest-config.block"
    written = consortium(env, "org1", "config-block", "--out", str(out))
    block = env.users[newcomer].put(out)
    review = env.run(
        newcomer, "site", "join", "--block", str(block), *site_dir(env, newcomer), "--yes"
    ).stderr
    assert f"config block {written['blockNumber']} of the running channel" in review, review
    assert "members (4): Org1MSP, Org2MSP, Org3MSP, Org4MSP" in review, review

    def consenter() -> bool:
        statuses = env.json(newcomer, "site", "status", *site_dir(env, newcomer))
        orderer = next(s for s in statuses if s["kind"] == "orderer")
        return bool(orderer["extra"].get("relation") == "consenter (active)") and int(
            orderer["height"] or 0
        ) > int(written["blockNumber"])

    assert wait_until(consenter, 120), env.run(newcomer, "site", "status", *site_dir(env, newcomer)).stdout
    env.run(newcomer, "site", "up", *site_dir(env, newcomer))


def members_seen(env: UnixSites, org: str) -> list[str]:
    """The org's `site up` re-reads the channel's members from its config into its view."""
    env.run(org, "site", "up", *site_dir(env, org))
    joined = json.loads((env.users[org].site / "channel" / "joined.json").read_text())
    return sorted(joined["members"])


def heartbeat(env: UnixSites, org: str, *endorsers: str) -> str:
    """Consortium:Heartbeat as the org's admin through its own peer (endorsed by
    `endorsers` when given): the commit status, or the error that stopped it."""
    args = ["tx", "submit", "Consortium:Heartbeat", "--identity", "admin", "--no-retry", *view(env, org)]
    for msp in endorsers:
        args += ["--endorsing-org", msp]
    result = env.run(org, *args, "--json", check=False)
    if not result.stdout.strip():
        return f"failed: {result.stderr.strip()[-300:]}"
    found = json.loads(result.stdout)
    return str(found.get("status") or found.get("error"))


def remove(env: UnixSites, org: str, signers: list[str]) -> None:
    """First the org's consenter, then the org; a majority of the four signs."""
    orderer = read_bundle(env.users[org].site / "outbox" / "bundle.json").bundle.orderers[0].address
    enact(env, "consenter-remove", orderer, signers)
    enact(env, "remove-org", f"Org{org[3:]}MSP", list(reversed(signers)))
