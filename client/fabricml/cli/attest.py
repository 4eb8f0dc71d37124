"""`fabricml serve` and `fabricml attest`: attested inference, receipts, k-of-n claims."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from cryptography import x509

from fabricml.gateway import CommitError, GatewayError, sync
from fabricml.network.topology import TopologyError

from .common import echo_json, fail, network_options, open_network, profile_for

INFERENCE_PORT_OFFSET = 41


@click.command("serve")
@network_options
@click.option("--org", default="org1", show_default=True)
@click.option("--model", "model_ref", required=True, help="Approved version to serve, name@version.")
@click.option("--identity", default="inference", show_default=True, help="Identity with role=inference.")
@click.option("--port", type=int, help="Listen port (default: the org's base port + 41).")
@click.option(
    "--receipts", type=click.Choice(["batch", "per-inference", "off"]), default="batch", show_default=True
)
@click.option("--anchor-every", default=256, show_default=True, help="Receipts per anchored batch.")
@click.option("--anchor-ms", default=500, show_default=True, help="Longest wait before anchoring, ms.")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False), help="Receipt log folder.")
def serve(
    topology: Path | None, state_dir: Path | None, org: str, model_ref: str, identity: str, port: int | None,
    receipts: str, anchor_every: int, anchor_ms: int, data_dir: Path | None,
) -> None:  # fmt: skip
    """Serve an approved model on 127.0.0.1 with a signed, anchored receipt per answer."""
    import logging

    import uvicorn

    from fabricml.attest.service import ServiceConfig, create_app

    try:
        net = open_network(topology, state_dir)
        o = net.topology.org(org)
    except TopologyError as exc:
        fail(exc)
    default_dir = net.layout.root / "inference" / f"{org}-{identity}-{model_ref.replace('@', '_')}"
    config = ServiceConfig(
        profile=net.layout.profile(o), model=model_ref, identity=identity, receipts=receipts,  # type: ignore[arg-type]
        anchor_every=anchor_every, anchor_ms=anchor_ms,
        state_dir=data_dir or default_dir,
    )  # fmt: skip
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    listen = port or o.port(INFERENCE_PORT_OFFSET)
    click.echo(f"serving {model_ref} for {org} on http://127.0.0.1:{listen}", err=True)
    uvicorn.run(create_app(config), host="127.0.0.1", port=listen, log_level="warning")


@click.group("attest")
def attest_group() -> None:
    """Receipts and k-of-n decisions."""


def _attestation(profile: Any, identity: str, channel: sync.Channel) -> sync.Contract:
    ident, signer, hash_ = profile.identity(identity)
    gw = sync.connect(channel, ident, signer, hash_)
    return gw.get_network(profile.channel_name).get_contract(profile.chaincode_name, "Attestation")


@attest_group.command("verify")
@network_options
@click.argument("bundle_file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--org", default="org1", show_default=True, help="Whose peer and CA list to use.")
@click.option(
    "--ca-file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="The service org's CA certificate (default: from the connection profile).",
)
@click.option("--offline", is_flag=True, help="Skip the ledger check.")
@click.option("--json", "as_json", is_flag=True)
def verify(
    topology: Path | None, state_dir: Path | None, bundle_file: Path, org: str, ca_file: Path | None,
    offline: bool, as_json: bool,
) -> None:  # fmt: skip
    """Check a receipt (or the service's proof bundle): signature, certificate chain, role,
    inclusion proof, and the anchored batch on the ledger."""
    from fabricml.attest.verify import verify_receipt

    bundle = json.loads(bundle_file.read_text())
    receipt = bundle.get("receipt", bundle)
    ca = None
    profile = None
    if ca_file:
        ca = x509.load_pem_x509_certificate(ca_file.read_bytes())
    if not (offline and ca_file):
        try:
            profile = profile_for(topology, state_dir, org)
        except (TopologyError, ValueError) as exc:
            fail(exc)
    if ca is None and profile is not None:
        for o in profile.raw["organizations"].values():
            if o["mspid"] == receipt["service"]["mspId"]:
                # The org's one CA issues both its TLS and its enrollment certificates.
                peer = profile.raw["peers"][o["peers"][0]]
                ca = x509.load_pem_x509_certificate(Path(peer["tlsCACerts"]["path"]).read_bytes())
    if offline or profile is None:
        checks = verify_receipt(bundle, ca, None)
    else:
        with profile.peer().sync_channel() as channel:
            checks = verify_receipt(bundle, ca, _attestation(profile, "auditor", channel))
    ok = all(c.ok for c in checks)
    if as_json:
        echo_json({"ok": ok, "checks": [c.to_json() for c in checks]})
    else:
        for c in checks:
            click.echo(f"{'PASS' if c.ok else 'FAIL'}  {c.name:24} {c.detail}")
        click.echo("receipt verified" if ok else "receipt NOT verified")
    sys.exit(0 if ok else 1)


@attest_group.group("claim")
def claim_group() -> None:
    """Decisions accepted only when k organizations' services agree."""


def _claim_call(org: str, identity: str, topology: Path | None, state_dir: Path | None, fn: str,
                *args: str, submit: bool = True) -> dict[str, Any]:  # fmt: skip
    try:
        profile = profile_for(topology, state_dir, org)
        with profile.peer().sync_channel() as channel:
            contract = _attestation(profile, identity, channel)
            call = contract.submit_transaction if submit else contract.evaluate_transaction
            return dict(json.loads(call(fn, *args)))
    except (GatewayError, CommitError, TopologyError, ValueError) as exc:
        fail(exc)


@claim_group.command("open")
@network_options
@click.argument("claim_id")
@click.option(
    "--inputs",
    "inputs_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    required=True,
    help='JSON file {"inputs": [[...]]}: what every service must answer.',
)
@click.option("--model", "model_name", required=True, help="Model name whose approved versions may answer.")
@click.option("-k", "k", type=int, required=True, help="How many organizations must agree.")
@click.option("--org", default="org1", show_default=True)
@click.option("--identity", default="admin", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def claim_open(
    topology: Path | None, state_dir: Path | None, claim_id: str, inputs_file: Path, model_name: str, k: int,
    org: str, identity: str, as_json: bool,
) -> None:  # fmt: skip
    """Open CLAIM_ID for the given input; org admins only."""
    from fabricml.attest.receipts import payload_digest

    inputs = json.loads(inputs_file.read_text())
    claim = _claim_call(org, identity, topology, state_dir, "OpenClaim", claim_id,
                        payload_digest({"inputs": inputs["inputs"]}), model_name, str(k))  # fmt: skip
    echo_json(claim) if as_json else click.echo(f"claim {claim_id} open: {k} organizations must agree")


@claim_group.command("show")
@network_options
@click.argument("claim_id")
@click.option("--org", default="org1", show_default=True)
@click.option("--identity", default="auditor", show_default=True)
def claim_show(topology: Path | None, state_dir: Path | None, claim_id: str, org: str, identity: str) -> None:
    """A claim and every organization's attested answer."""
    claim = _claim_call(org, identity, topology, state_dir, "GetClaim", claim_id, submit=False)
    profile = profile_for(topology, state_dir, org)
    with profile.peer().sync_channel() as channel:
        votes = json.loads(
            _attestation(profile, identity, channel).evaluate_transaction("ClaimAttestations", claim_id)
        )
    echo_json({**claim, "attestations": votes})


@claim_group.command("payout")
@network_options
@click.argument("claim_id")
@click.option("--amount", required=True, help="Amount to pay, e.g. 1250.00.")
@click.option("--org", default="org1", show_default=True)
@click.option("--identity", default="admin", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def claim_payout(
    topology: Path | None, state_dir: Path | None, claim_id: str, amount: str, org: str, identity: str,
    as_json: bool,
) -> None:  # fmt: skip
    """Execute the payout of an accepted claim, once."""
    payout = _claim_call(org, identity, topology, state_dir, "ExecutePayout", claim_id, amount)
    echo_json(payout) if as_json else click.echo(f"paid {amount} for claim {claim_id} ({payout['txId']})")
