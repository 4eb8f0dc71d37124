"""`fabricml serve` and `fabricml attest`: attested inference, receipts, k-of-n claims."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from cryptography import x509

from fabricml.contracts import AttestationClient, open_contract

from .app import App, identity_option, org_option, pass_app, shared_options, signer_options

INFERENCE_PORT_OFFSET = 41


@dataclass(frozen=True)
class ServeOptions:
    org: str
    model_ref: str
    identity: str
    host: str
    port: int | None
    receipts: str
    anchor_every: int
    anchor_ms: int
    data_dir: Path | None
    tls_cert: Path | None
    tls_key: Path | None


@click.command("serve")
@shared_options
@org_option()
@click.option("--model", "model_ref", required=True, help="Approved version to serve, name@version.")
@identity_option("inference", "Identity with role=inference.")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Listen address; a site's service listens on the site's host (its certificate names it).",
)
@click.option("--port", type=int, help="Listen port (default: the org's base port + 41).")
@click.option(
    "--receipts", type=click.Choice(["batch", "per-inference", "off"]), default="batch", show_default=True
)
@click.option("--anchor-every", default=256, show_default=True, help="Receipts per anchored batch.")
@click.option("--anchor-ms", default=500, show_default=True, help="Longest wait before anchoring, ms.")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False), help="Receipt log folder.")
@click.option(
    "--tls-cert", type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Server TLS certificate (default: <identity>-tls's, issued by the org's CA on first use).",
)  # fmt: skip
@click.option("--tls-key", type=click.Path(path_type=Path, dir_okay=False, exists=True), help="Its key.")
@pass_app
def serve(app: App, **given: Any) -> None:
    """Serve an approved model over mutual TLS (on 127.0.0.1 unless --host), with a signed, anchored receipt
    per answer (predict is open; receipts' proofs need a member's certificate, claims the org admin's)."""
    import logging

    from fabricml.attest.service import ServiceConfig, create_app
    from fabricml.attest.service_tls import server_certificate, trust

    opt = ServeOptions(**given)
    if (opt.tls_cert is None) != (opt.tls_key is None):
        raise click.UsageError("give both --tls-cert and --tls-key, or neither")
    net = app.network
    o = net.topology.org(opt.org)
    default_dir = (
        net.layout.root / "inference" / f"{opt.org}-{opt.identity}-{opt.model_ref.replace('@', '_')}"
    )
    callers = trust(net, o)
    config = ServiceConfig(
        profile=net.layout.profile(o),
        model=opt.model_ref,
        identity=opt.identity,
        receipts=opt.receipts,  # type: ignore[arg-type]
        anchor_every=opt.anchor_every,
        anchor_ms=opt.anchor_ms,
        state_dir=opt.data_dir or default_dir,
        own_ca=callers.own_ca,
        member_cas=callers.member_cas,
        crls=callers.crls,
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    tls = (
        (opt.tls_cert, opt.tls_key)
        if opt.tls_cert and opt.tls_key
        else server_certificate(net, o, opt.identity)
    )
    listen = opt.port or o.port(INFERENCE_PORT_OFFSET)
    click.echo(f"serving {opt.model_ref} for {opt.org} on https://{opt.host}:{listen} (mutual TLS)", err=True)
    members = {m.msp_id: net.layout.ca_cert(m) for m in net.topology.organizations}
    _run_service(create_app(config), (opt.host, listen), tls, members)


def _run_service(asgi: Any, where: tuple[str, int], tls: tuple[Path, Path], members: dict[str, Path]) -> None:
    """uvicorn behind the admin API's listener: handshake and request-head deadlines, and
    connection slots per member org apart from those of callers without a certificate."""
    import uvicorn

    from fabricml.api.admission import ConnectionLimits
    from fabricml.api.listener import GuardedServer, member_classifier
    from fabricml.api.tls import server_context

    host, port = where
    config = uvicorn.Config(asgi, host=host, port=port, log_level="warning", timeout_keep_alive=15)
    config.load()
    context = server_context(*tls, list(members.values()))
    GuardedServer(config, context, member_classifier(members), ConnectionLimits()).run()


@click.group("attest")
def attest_group() -> None:
    """Receipts and k-of-n decisions."""


@attest_group.command("ask")
@shared_options
@click.argument("url")
@click.option(
    "--service-org",
    required=True,
    help="Member whose service it is: its CA must have issued the server's certificate.",
)
@click.option(
    "--inputs",
    "inputs_file",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help='JSON file {"inputs": [[...]]}.',
)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the answer's receipt with its proof (for `attest verify`).",
)
@click.option("--wait", default=60.0, show_default=True, help="Seconds to wait for the service to serve.")
@org_option(help="Whose identity calls (any member's may read a receipt's proof).")
@identity_option("auditor")
@pass_app
def ask(
    app: App, url: str, service_org: str, inputs_file: Path, out: Path, wait: float, org: str, identity: str
) -> None:
    """Ask a member's inference service at URL for answers, wait until their receipt is
    anchored on the ledger, and write the receipt with its inclusion proof to --out."""
    from fabricml.attest.caller import predict, proof, wait_serving
    from fabricml.attest.service_tls import client_context, identity_files

    net = app.network
    caller = identity_files(net, net.topology.org(org), identity)
    tls = client_context(net, net.topology.org(service_org), caller)
    url = url.rstrip("/")
    wait_serving(url, tls, wait)
    answer = predict(url, tls, json.loads(inputs_file.read_text())["inputs"])
    bundle = proof(url, tls, int(answer["receipt"]["sequence"]))
    out.write_text(json.dumps(bundle, indent=1, sort_keys=True))
    summary = {"outputs": answer["outputs"], "sequence": answer["receipt"]["sequence"], "receipt": str(out)}
    app.answer(
        summary, f"{len(answer['outputs'])} answers; receipt {summary['sequence']} anchored, written to {out}"
    )


@attest_group.command("verify")
@shared_options
@click.argument("bundle_file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@org_option(help="Whose peer and CA list to use.")
@click.option(
    "--ca-file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="The service org's CA certificate (default: from the connection profile).",
)
@click.option("--offline", is_flag=True, help="Skip the ledger check.")
@pass_app
def verify(app: App, bundle_file: Path, org: str, ca_file: Path | None, offline: bool) -> None:
    """Check a receipt (or the service's proof bundle): signature, certificate chain, role,
    inclusion proof, and the anchored batch on the ledger."""
    from fabricml.attest.verify import service_ca, verify_receipt

    bundle = json.loads(bundle_file.read_text())
    receipt = bundle.get("receipt", bundle)
    ca = x509.load_pem_x509_certificate(ca_file.read_bytes()) if ca_file else None
    profile = None if (offline and ca_file) else app.profile(org)
    if ca is None and profile is not None:
        ca = service_ca(profile, receipt["service"]["mspId"])
    if offline or profile is None:
        checks = verify_receipt(bundle, ca, None)
    else:
        with open_contract(profile, "auditor", AttestationClient) as attestation:
            checks = verify_receipt(bundle, ca, attestation)
    ok = all(c.ok for c in checks)
    if app.as_json:
        app.emit({"ok": ok, "checks": [c.to_json() for c in checks]})
    else:
        for c in checks:
            click.echo(f"{'PASS' if c.ok else 'FAIL'}  {c.name:24} {c.detail}")
        click.echo("receipt verified" if ok else "receipt NOT verified")
    sys.exit(0 if ok else 1)


@attest_group.group("claim")
def claim_group() -> None:
    """Decisions accepted only when k organizations' services agree."""


@claim_group.command("open")
@shared_options
@click.argument("claim_id")
@click.option(
    "--inputs",
    "inputs_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    required=True,
    help='JSON file {"inputs": [[...]]}: what every service must answer.',
)
@click.option("--model", "model_name", required=True, help="Model name whose approved versions may answer.")
@click.option("-k", "k", type=int, required=True, help="How many organizations must agree (at least 2).")
@click.option("--amount", required=True, help="The payout, fixed now: a decimal, at most 2 decimals (12.50).")
@org_option()
@identity_option("admin")
@pass_app
def claim_open(
    app: App, claim_id: str, inputs_file: Path, model_name: str, k: int, amount: str, org: str, identity: str
) -> None:
    """Open CLAIM_ID for the given input; org admins only."""
    from fabricml.attest.receipts import payload_digest

    inputs = json.loads(inputs_file.read_text())
    digest = payload_digest({"inputs": inputs["inputs"]})
    with open_contract(app.profile(org), identity, AttestationClient) as attestation:
        claim = attestation.open_claim(claim_id, digest, model_name, k, amount)
    app.answer(claim.to_json(), f"claim {claim.id} open: {k} organizations must agree; pays {amount}")


@claim_group.command("show")
@signer_options("auditor")
@click.argument("claim_id")
def claim_show(app: App, claim_id: str, org: str, identity: str) -> None:
    """A claim and every organization's attested answer."""
    with open_contract(app.profile(org), identity, AttestationClient) as attestation:
        claim, votes = attestation.get_claim(claim_id), attestation.claim_attestations(claim_id)
    app.emit({**claim.to_json(), "attestations": [v.to_json() for v in votes]})


@claim_group.command("payout")
@shared_options
@click.argument("claim_id")
@click.option("--amount", required=True, help="Amount to pay, e.g. 1250.00.")
@org_option()
@identity_option("admin")
@pass_app
def claim_payout(app: App, claim_id: str, amount: str, org: str, identity: str) -> None:
    """Execute the payout of an accepted claim, once."""
    with open_contract(app.profile(org), identity, AttestationClient) as attestation:
        payout = attestation.execute_payout(claim_id, amount)
    app.answer(payout.to_json(), f"paid {amount} for claim {claim_id} ({payout.tx_id})")
