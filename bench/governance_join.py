"""Time from proposing a newcomer to the newcomer endorsing, phase by phase.

Usage: .venv/bin/python bench/governance_join.py [--json]

Brings up its own three-site consortium (`fabricml network up`, 127.0.87.1-127.0.89.1,
ports from 27800) in a temporary directory; a fourth site (127.0.90.1, ports 28100) is
initialized and exchanges bundles with the members (not timed as part of the join). Then,
in-process with the library the CLI calls, each org acting on its own site:
  add-org        org1 and org2 import the bundle; org1 proposes; org1, org2 sign; submit
  consenter-add  org1 proposes the newcomer's orderer; org1, org2, org3 sign; submit
  site join      with the latest config block: orderer, peer from block 0, catch up,
                 package, anchor peer, approval of the committed definition
  site up        gossip, heartbeat, Consortium:Join, artifact store and API
  endorsing      until a transaction endorsed by Org1, Org2 and Org4 is VALID
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rich.console import Console  # noqa: E402

from bench import options  # noqa: E402
from bench.benchnet import CLI  # noqa: E402
from bench.timing import print_steps, timed  # noqa: E402
from fabricml.gateway import CommitError, GatewayError, sync  # noqa: E402
from fabricml.network import joining, siteup  # noqa: E402
from fabricml.network.consortium import Consortium  # noqa: E402
from fabricml.network.governance import drafts, flow  # noqa: E402
from fabricml.network.governance.orgdef import read_public_msp  # noqa: E402
from fabricml.network.governance.site import Site as Admin  # noqa: E402
from fabricml.network.site import Site  # noqa: E402
from fabricml.network.topology import parse  # noqa: E402

ORGS = ("org1", "org2", "org3")
BASE = 27800


def enact(draft: flow.Draft, signers: list[Admin]) -> None:
    proposal = flow.propose(signers[0], draft)
    for admin in signers:
        flow.sign(admin, proposal["id"])
    flow.submit(signers[0], proposal["id"])


def endorsed_by_newcomer(admin: Admin, timeout: float = 180) -> None:
    end = time.monotonic() + timeout
    with admin.profile.peer().sync_channel() as channel:
        s = admin.signing
        contract = (
            sync.connect(channel, s.identity, s.signer, s.hash)
            .get_network(admin.channel)
            .get_contract(admin.profile.chaincode_name, "Consortium")
        )
        while time.monotonic() < end:
            try:
                _, commit = contract.submit_async(
                    "Heartbeat", endorsing_organizations=["Org1MSP", "Org2MSP", "Org4MSP"]
                )
                if commit.status().successful:
                    return
            except (GatewayError, CommitError):
                pass
            time.sleep(1)
    raise TimeoutError(f"no transaction endorsed by Org4MSP was VALID within {timeout:.0f}s")


def run(tmp: Path, rows: list[tuple[str, float]]) -> None:
    quiet = Console(stderr=True, quiet=True)
    net = Consortium.from_state(tmp / "state", console=quiet)
    newcomer = {"name": "org4", "host": "127.0.90.1", "ports": {"base": BASE + 300}}
    org4 = Site(parse({"organizations": [newcomer]}).organizations[0], tmp / "org4", console=quiet)
    try:
        org4.init()
        for name in ORGS:
            org4.import_bundle(net.layout.exchange / f"{name}.bundle.json")
        joined(net, org4, tmp, rows)
    finally:
        org4.down()


def joined(net: Consortium, org4: Site, tmp: Path, rows: list[tuple[str, float]]) -> None:
    admins = {name: Admin.open(net.site(name).layout.root) for name in ORGS}
    org1 = admins["org1"]
    b = org4.members.get("org4").bundle

    def add_org() -> None:
        for name in ("org1", "org2"):
            net.site(name).import_bundle(org4.layout.bundle, b.fingerprint)
        msp = read_public_msp(b.msp_id, net.site("org1").members.msp_dir(b.name))
        enact(
            drafts.add_org(org1.translator, org1.channel, org1.current_config(), msp, b),
            [org1, admins["org2"]],
        )

    def consenter_add() -> None:
        o = b.orderers[0]
        draft = drafts.add_consenter(
            org1.translator, org1.channel, org1.current_config(), o.host, o.port, o.tls_cert.encode()
        )
        enact(draft, list(admins.values()))

    def join() -> None:
        block = tmp / "latest-config.block"
        with org1.orderer() as orderer:
            block.write_bytes(orderer.latest_config_block().SerializeToString())
        joining.join(org4, block, None, lambda lines: True)

    timed(rows, "add-org (propose, 2 of 3 sign, submit)", add_org)
    timed(rows, "consenter-add (propose, 3 of 4 sign, submit)", consenter_add)
    timed(rows, "site join with the latest config block", join)
    timed(rows, "site up", lambda: siteup.up(org4))
    timed(rows, "until endorsed by Org1, Org2, Org4: VALID", lambda: endorsed_by_newcomer(org1))


def main() -> None:
    parser = options.parser(__doc__)
    options.add_json(parser)
    args = parser.parse_args()
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="fabricml-bench-gov-") as name:
        tmp = Path(name)
        orgs = "".join(f"  - name: {o}\n    host: 127.0.8{i + 7}.1\n" for i, o in enumerate(ORGS))
        (tmp / "topology.yaml").write_text(f"name: bench-gov\nports:\n  base: {BASE}\norganizations:\n{orgs}")
        where = ["--topology", str(tmp / "topology.yaml"), "--state-dir", str(tmp / "state")]
        try:
            subprocess.run(
                [*CLI, "up", *where], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            run(tmp, rows)
        finally:
            subprocess.run([*CLI, "down", *where], check=False, capture_output=True)
    rows.append(("proposal to the new org endorsing, total", sum(t for _, t in rows)))
    print_steps(rows, args.json)


if __name__ == "__main__":
    main()
