"""`fabricml site`, `fabricml consortium` and `fabricml chaincode`: one organization's operator
runs these on its own site, exchanging only bundles, the genesis block and the definition."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from . import founding, joining, siteup, upgrade
from .binaries import BuildError
from .bundle import BundleError
from .channeltx import ChannelSettings, GenesisBuildError
from .cli import status_table
from .clierrors import reports
from .deploy.cli import deploy_group
from .genesis import GenesisError
from .identities import CAError
from .peercli import FabricCommandError
from .site import Site
from .sitefile import load as load_site_file
from .status import json_status, site_status
from .supervisor import NetworkError
from .topology import CONSENSUS, ENDORSEMENT_RULES, TopologyError, batch_timeout_ms
from .txlator import TranslateError

console = Console(stderr=True)
ERRORS = (
    NetworkError,
    BundleError,
    GenesisError,
    TopologyError,
    FabricCommandError,
    CAError,
    BuildError,
    GenesisBuildError,
    TranslateError,
    ValueError,
    OSError,
)
F = TypeVar("F", bound=Callable[..., Any])
_reports = reports(console, *ERRORS)


def state_dir_option(f: F) -> F:
    option = click.option(
        "--state-dir",
        required=True,
        type=click.Path(path_type=Path, file_okay=False),
        help="The site's own directory (mode 0700).",
    )
    return option(f)


def _open(state_dir: Path) -> Site:
    return Site.open(state_dir, console=console)


@click.group("site")
def site_group() -> None:
    """One organization's site: its CA, keys and nodes, on its own hosts."""


@site_group.command("init")
@_reports
@click.option("--site-file", required=True, type=click.Path(path_type=Path, dir_okay=False))
@state_dir_option
def site_init(site_file: Path, state_dir: Path) -> None:
    """Create the site: its own CA and TLS CA, identities, node configuration and bundle."""
    site = Site(load_site_file(site_file), state_dir, console=console)
    if not site.init():
        console.print(f"{state_dir} is already an initialized site of {site.org.name}; nothing changed")
        return
    fingerprint = site.members.get(site.org.name).bundle.fingerprint
    console.print(f"[green]site {site.org.name} is initialized[/] in {site.layout.root}")
    console.print(f"its bundle: {site.layout.bundle}  fingerprint {fingerprint}")


@site_group.command("export")
@_reports
@state_dir_option
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), help="Also write the bundle here.")
def site_export(state_dir: Path, out: Path | None) -> None:
    """Write the site's public bundle, signed by its admin, and print its fingerprint."""
    signed = _open(state_dir).export(out)
    console.print(
        f"bundle of {signed.bundle.name} ({signed.bundle.msp_id}): {out or _open(state_dir).layout.bundle}"
    )
    click.echo(signed.bundle.fingerprint)


@site_group.command("import")
@_reports
@click.argument("bundle", type=click.Path(path_type=Path, dir_okay=False))
@state_dir_option
@click.option("--fingerprint", help="The fingerprint its admin read to you; the import fails if it differs.")
@click.option("--replace", is_flag=True, help="Replace a different bundle imported before for the same org.")
def site_import(bundle: Path, state_dir: Path, fingerprint: str | None, replace: bool) -> None:
    """Check a member's bundle (its admin's signature, its contents) and keep it."""
    signed = _open(state_dir).import_bundle(bundle, fingerprint, replace)
    b = signed.bundle
    console.print(f"[green]imported[/] {b.name} ({b.msp_id}); signature of its admin checked")
    console.print(f"  peer {b.peer_address}; orderers {', '.join(o.address for o in b.orderers) or 'none'}")
    console.print(f"  fingerprint {b.fingerprint}" + ("" if fingerprint else "  ← compare it with its admin"))


def _confirm(assume_yes: bool) -> Callable[[list[str]], bool]:
    def confirm(lines: list[str]) -> bool:
        for line in lines:
            console.print(line, highlight=False)
        return assume_yes or click.confirm("Join this channel with this site?", default=False, err=True)

    return confirm


@site_group.command("join")
@_reports
@click.option(
    "--genesis",
    "--block",
    "block",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The genesis block (founding), or the latest config block of a running channel that "
    "a proposal added this org to (a member writes it: `fabricml consortium config-block`).",
)
@click.option(
    "--definition",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The chaincode definition the founder proposed (definition.json); a site joining a "
    "running channel approves the committed one.",
)
@state_dir_option
@click.option("--yes", "assume_yes", is_flag=True, help="Join without asking after the review.")
def site_join(block: Path, definition: Path | None, state_dir: Path, assume_yes: bool) -> None:
    """Review the block, join this site's orderers and peer, approve the chaincode definition."""
    site = _open(state_dir)
    given = founding.Definition.load(definition) if definition else None
    d = joining.join(site, block, given, _confirm(assume_yes))
    console.print(
        f"[green]{site.org.name} joined {site.channel!r}[/] and approved {d.version}; "
        "`fabricml chaincode commit` succeeds once enough members approved (nothing to commit when "
        "it joined a running channel: `fabricml site up`)"
    )


@site_group.command("up")
@_reports
@state_dir_option
def site_up(state_dir: Path) -> None:
    """Start the site's processes; once the chaincode is committed, check and serve."""
    started = siteup.up(_open(state_dir))
    console.print(f"started {len(started)} process(es)" + (f": {', '.join(started)}" if started else ""))


@site_group.command("down")
@_reports
@state_dir_option
def site_down(state_dir: Path) -> None:
    """Stop every process of the site; ledgers and keys are kept."""
    stopped = _open(state_dir).down()
    console.print(f"stopped {len(stopped)} process(es)" + (f": {', '.join(stopped)}" if stopped else ""))


@site_group.command("status")
@_reports
@state_dir_option
@click.option("--json", "as_json", is_flag=True)
def site_status_cmd(state_dir: Path, as_json: bool) -> None:
    """Health, block heights and committed chaincode of the site's nodes."""
    statuses = site_status(_open(state_dir))
    if as_json:
        click.echo(json_status(statuses))
    else:
        Console().print(status_table(statuses))


@click.command("create")
@_reports
@state_dir_option
@click.option(
    "--member",
    "members",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="A member's bundle (repeat for each).",
)
@click.option("--channel", default="consortium", show_default=True)
@click.option("--consensus", type=click.Choice(CONSENSUS), default="raft", show_default=True)
@click.option("--endorsement", type=click.Choice(ENDORSEMENT_RULES), default="MAJORITY", show_default=True)
@click.option("--batch-timeout", default="500ms", show_default=True, help="10ms to 10s.")
@click.option("--chaincode", default="fabricml", show_default=True)
@click.option("--version", "version", default="1.0", show_default=True)
@click.option("--out", type=click.Path(file_okay=False), help="Also copy both files here.")
def create(state_dir: Path, members: tuple[Path, ...], **options: str) -> None:
    """Found a consortium (the founding site): its genesis block and first chaincode definition."""
    o = options
    settings = ChannelSettings(
        o["channel"], o["consensus"], o["endorsement"], batch_timeout_ms(o["batch_timeout"])
    )
    definition = founding.Definition(o["chaincode"], o["version"], 1)
    out = Path(o["out"]) if o["out"] else None
    site = _open(state_dir)
    block, definition_file = founding.create(site, list(members), settings, definition, out)
    lines = joining.review_block(site, block)[0].lines()
    for line in lines:
        console.print(line, highlight=False)
    console.print(
        f"[green]genesis block[/] {block}\n[green]definition[/] {definition_file}\n"
        "hand both to every member; each runs `fabricml site join`"
    )


@click.group("chaincode")
def chaincode_group() -> None:
    """The chaincode definition: each site approves on its own, any site commits."""


@chaincode_group.command("upgrade")
@_reports
@state_dir_option
@click.option("--version", "version", required=True, help="The new version, e.g. 1.1.")
def cc_upgrade(state_dir: Path, version: str) -> None:
    """Build and install this site's package of VERSION and approve it as the next sequence."""
    d = upgrade.approve_upgrade(_open(state_dir), version)
    console.print(f"approved {d.chaincode} {d.version} (sequence {d.sequence}); commit once enough approved")


@chaincode_group.command("commit")
@_reports
@state_dir_option
def cc_commit(state_dir: Path) -> None:
    """Commit the definition this site approved, once the channel's majority approved it too."""
    site = _open(state_dir)
    d = upgrade.commit(site)
    console.print(f"[green]committed[/] {d.chaincode} {d.version} (sequence {d.sequence})")


site_group.add_command(deploy_group)
