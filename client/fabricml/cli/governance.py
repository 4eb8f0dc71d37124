"""`fabricml consortium propose|sign|submit|confirm|proposals|show|config-block`: channel governance.

Every command acts for one org with that org's admin identity only: `--state-dir` of the
org's own site (or, in a local consortium, `--org` names the site). It reads the config
from the org's own orderer, endorses through the org's own peer and signs with the org's
own admin key."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.table import Table
from rich.text import Text

from fabricml.gateway import GatewayError, refusal_of
from fabricml.network import site as sites
from fabricml.network.bundle import BundleError
from fabricml.network.bundle import read as read_bundle
from fabricml.network.governance import drafts, flow
from fabricml.network.governance.configtree import StaleUpdateError
from fabricml.network.governance.orderer import DeliverError, OrdererRefusedError
from fabricml.network.governance.orgdef import OrgDefinitionError, read_public_msp
from fabricml.network.governance.review import ReviewError
from fabricml.network.governance.site import ConfigSnapshot, Site
from fabricml.network.governance.translator import TranslatorError
from fabricml.network.governance.updates import UpdateError, parse_json
from fabricml.network.layout import SiteLayout
from fabricml.network.topology import TopologyError

from .app import App, pass_app, shared_options

T = TypeVar("T")
# Failures a governance step reports as a clear message (and exit status 1).
EXPECTED = (
    GatewayError, OrdererRefusedError, DeliverError, ReviewError, StaleUpdateError, UpdateError,
    OrgDefinitionError, TranslatorError, TopologyError, BundleError, sites.SiteError, ValueError,
    LookupError, TimeoutError, OSError,
)  # fmt: skip


def _error_json(exc: BaseException) -> dict[str, Any]:
    data: dict[str, Any] = {"error": type(exc).__name__, "message": str(exc).splitlines()[0]}
    refusal = refusal_of(exc)
    if refusal is not None:
        data["code"], data["message"] = refusal.code.value, refusal.message
    if isinstance(exc, OrdererRefusedError):
        data["status"], data["message"], data["orderer"] = exc.status, exc.info, exc.address
    return data


def _guard(app: App, step: Callable[[], T]) -> T:
    """Run a step; on an expected failure print it (as JSON with --json) and exit 1."""
    try:
        return step()
    except EXPECTED as exc:
        data = _error_json(exc)
        if app.as_json:
            app.emit(data)
        else:
            code = data.get("code") or data.get("status") or data["error"]
            app.console.print(
                Text.assemble(("refused", "red"), f" ({code}): {data['message']}"), soft_wrap=True
            )
        raise SystemExit(1) from None


def _site_options(f: Any) -> Any:
    """The shared options and --org; the command receives the App first."""
    f = pass_app(f)
    f = click.option(
        "--org", help="The org whose admin acts: the site's own (default), or in a local consortium "
        "one of its orgs (default org1)."
    )(f)  # fmt: skip
    return shared_options(f)


def _org_site(app: App, org: str | None) -> sites.Site:
    """The acting org's site: --state-dir itself, or the org's site in a local consortium."""
    if app.state_dir is not None and SiteLayout(app.state_dir).site_file.exists():
        site = sites.Site.open(app.state_dir, console=app.console)
        if org not in (None, site.org.name):
            raise click.UsageError(f"{app.state_dir} is {site.org.name}'s site; it cannot act as {org}")
        return site
    net = app.network
    return net.site(net.topology.org(org or "org1"))


def _site(app: App, org: str | None) -> Site:
    """The org's governance view: its admin, its orderer, its peer, the bundles it imported."""
    return _guard(app, lambda: Site.open(_org_site(app, org).layout.root))


@click.group("consortium")
def consortium_group() -> None:
    """Found the consortium (create); propose, sign and submit membership and policy changes."""


@consortium_group.group("propose")
def propose_group() -> None:
    """Draft a config update from this org's copy of the channel config and record it."""


def _propose(app: App, site: Site, make: Callable[[ConfigSnapshot], flow.Draft]) -> None:
    def step() -> dict[str, Any]:
        return flow.propose(site, make(site.current_config()))

    p = _guard(app, step)
    if app.as_json:
        app.emit(p)
        return
    app.say(f"proposal {p['id']} ({p['kind']} {p['subject']}): {p['summary']}")
    for line in p["changes"]:
        app.say(f"  • {line}")
    app.say(f"members sign it with: fabricml consortium sign {p['id']} --state-dir <their site>")


@propose_group.command("policy")
@_site_options
@click.argument("path")
@click.option("--value", "value", required=True, help="New value or policy, as configtxlator JSON.")
@click.option("--summary", default="", help="Plain-language summary (must name PATH).")
def propose_policy(
    app: App,
    org: str | None,
    path: str,
    value: str,
    summary: str,
) -> None:
    """Change the policy or value at PATH, e.g. /Channel/Orderer/BatchSize."""
    site = _site(app, org)
    new = _guard(app, lambda: parse_json(value, "--value"))
    _propose(app, site, lambda snap: drafts.policy(site.translator, site.channel, snap, path, new, summary))


@propose_group.command("add-org")
@_site_options
@click.argument("bundle", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--fingerprint", required=True, help="The fingerprint the newcomer's admin read to you.")
@click.option("--summary", default="", help="Plain-language summary (must name the newcomer's MSP ID).")
def propose_add_org(app: App, org: str | None, bundle: Path, fingerprint: str, summary: str) -> None:
    """Sponsor a newcomer from its signed public BUNDLE (`fabricml site export`): this site
    imports it (signature and fingerprint checked), then proposes adding its org and its
    orderers' endpoints; the proposal records the bundle's digest and fingerprint."""
    org_site = _guard(app, lambda: _org_site(app, org))
    b = _guard(app, lambda: org_site.import_bundle(bundle, fingerprint)).bundle
    msp = _guard(app, lambda: read_public_msp(b.msp_id, org_site.members.msp_dir(b.name)))
    site = _site(app, org)
    _propose(app, site, lambda snap: drafts.add_org(site.translator, site.channel, snap, msp, b, summary))


@propose_group.command("remove-org")
@_site_options
@click.argument("msp_id")
@click.option("--summary", default="", help="Plain-language summary (must name MSP_ID).")
def propose_remove_org(app: App, org: str | None, msp_id: str, summary: str) -> None:
    """Remove MSP_ID from the channel."""
    site = _site(app, org)
    _propose(app, site, lambda snap: drafts.remove_org(site.translator, site.channel, snap, msp_id, summary))


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"{text!r} is not HOST:PORT")
    return host, int(port)


@propose_group.command("consenter-add")
@_site_options
@click.argument("address")
@click.option("--tls-cert", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="The orderer's TLS certificate (PEM), used as client and server certificate.")  # fmt: skip
@click.option("--bundle", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="Take the TLS certificate of the orderer at ADDRESS from this bundle.")  # fmt: skip
@click.option("--summary", default="", help="Plain-language summary (must name ADDRESS).")
def propose_consenter_add(
    app: App, org: str | None, address: str, tls_cert: Path | None, bundle: Path | None, summary: str
) -> None:
    """Add the Raft consenter at ADDRESS (HOST:PORT)."""
    if (tls_cert is None) == (bundle is None):
        raise click.UsageError("give exactly one of --tls-cert and --bundle")
    site = _site(app, org)
    host, port = _host_port(address)
    cert = tls_cert.read_bytes() if tls_cert else _guard(app, lambda: _orderer_cert(bundle, address))
    _propose(app, site, lambda snap: drafts.add_consenter(
        site.translator, site.channel, snap, host, port, cert, summary))  # fmt: skip


def _orderer_cert(bundle: Path | None, address: str) -> bytes:
    assert bundle is not None
    b = read_bundle(bundle).bundle
    for o in b.orderers:
        if o.address == address:
            return o.tls_cert.encode()
    listed = ", ".join(o.address for o in b.orderers) or "none"
    raise BundleError(f"{bundle} ({b.msp_id}) has no orderer at {address}; its orderers: {listed}")


@propose_group.command("consenter-remove")
@_site_options
@click.argument("address")
@click.option("--summary", default="", help="Plain-language summary (must name ADDRESS).")
def propose_consenter_remove(app: App, org: str | None, address: str, summary: str) -> None:
    """Remove the Raft consenter at ADDRESS (HOST:PORT)."""
    site = _site(app, org)
    host, port = _host_port(address)
    _propose(app, site, lambda snap: drafts.remove_consenter(
        site.translator, site.channel, snap, host, port, summary))  # fmt: skip


@consortium_group.command("sign")
@_site_options
@click.argument("proposal_id")
def sign(app: App, org: str | None, proposal_id: str) -> None:
    """Review PROPOSAL_ID against this org's own config, sign it with its admin key, record it."""
    site = _site(app, org)
    recorded, checked = _guard(app, lambda: flow.sign(site, proposal_id))
    said = f"{recorded['mspId']} signed proposal {proposal_id}; reviewed effect:"
    app.answer({**recorded, "review": checked.lines}, said, *(f"  • {line}" for line in checked.lines))


@consortium_group.command("submit")
@_site_options
@click.argument("proposal_id")
def submit(app: App, org: str | None, proposal_id: str) -> None:
    """Assemble PROPOSAL_ID's signatures, send it to this org's orderer, record where it applied."""
    site = _site(app, org)
    applied = _guard(app, lambda: flow.submit(site, proposal_id))
    data = {
        "blockNumber": applied.block_number,
        "updateDigest": applied.update_digest,
        "outcome": applied.outcome,
    }
    app.answer(data, f"proposal {proposal_id} applied in config block {applied.block_number}")


@consortium_group.command("confirm")
@_site_options
@click.argument("proposal_id")
def confirm(app: App, org: str | None, proposal_id: str) -> None:
    """Find the config block that applied PROPOSAL_ID on this org's orderer; record it."""
    site = _site(app, org)
    outcome = _guard(app, lambda: flow.confirm(site, proposal_id))
    app.answer(
        outcome, f"{outcome['mspId']} confirms block {outcome['blockNumber']} for proposal {proposal_id}"
    )


@consortium_group.command("config-block")
@_site_options
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), required=True)
def config_block(app: App, org: str | None, out: Path) -> None:
    """Write the channel's latest config block, fetched from this org's orderer: what a newcomer
    joins with (`fabricml site join --block FILE`) once a proposal added it."""
    site = _site(app, org)

    def fetch() -> int:
        with site.orderer() as orderer:
            block = orderer.latest_config_block()
        out.write_bytes(block.SerializeToString())
        return int(block.header.number)

    number = _guard(app, fetch)
    app.answer(
        {"blockNumber": number, "path": str(out)},
        f"config block {number} of {site.channel!r} written to {out}",
    )


@consortium_group.command("proposals")
@_site_options
def proposals(app: App, org: str | None) -> None:
    """Every proposal on the ledger, with its signatures and status."""
    site = _site(app, org)
    found: list[dict[str, Any]] = _guard(app, lambda: site.evaluate("ListProposals"))
    if app.as_json:
        app.emit(found)
        return
    table = Table("id", "kind", "subject", "proposer", "signed by", "status")
    for p in found:
        signers = ", ".join(s["mspId"] for s in p["signatures"])
        cells = (p["id"], p["kind"], p["subject"], p["proposer"], signers, p["status"])
        table.add_row(*(Text(str(c)) for c in cells))  # as text: no markup
    app.results.print(table)


@consortium_group.command("show")
@_site_options
@click.argument("proposal_id")
def show(app: App, org: str | None, proposal_id: str) -> None:
    """One proposal: what it changes, who signed, where it applied."""
    site = _site(app, org)
    found = _guard(app, lambda: flow.proposal(site, proposal_id))
    if app.as_json:
        app.emit(found)
        return
    shown = {k: v for k, v in found.items() if k not in ("configUpdate", "signatures")}
    shown["signatures"] = [
        {k: v for k, v in s.items() if k != "configSignature"} for s in found["signatures"]
    ]
    click.echo(json.dumps(shown, indent=2, sort_keys=True))
