"""`fabricml identity`: register, enroll, revoke and list identities at the org's Fabric CA."""

from __future__ import annotations

import secrets
from pathlib import Path

import click
from rich.table import Table

from fabricml.network.channelconfig import ChannelConfig
from fabricml.network.identities import CAError, CertificateAuthority, IdentitySpec
from fabricml.network.network import Network
from fabricml.network.peercli import FabricCommandError
from fabricml.network.topology import TopologyError

from .common import console, echo_json, fail, network_options, open_network

ROLES = ("trainer", "inference", "auditor")


def _ca(topology: Path | None, state_dir: Path | None, org: str) -> tuple[CertificateAuthority, Network]:
    net = open_network(topology, state_dir)
    return CertificateAuthority(net.binaries, net.layout, net.topology.org(org)), net


def _org_option(f: click.decorators.FC) -> click.decorators.FC:
    return click.option("--org", default="org1", show_default=True, help="Organization whose CA to use.")(f)


@click.group("identity")
def identity_group() -> None:
    """Manage identities through the organization's own Fabric CA."""


@identity_group.command()
@network_options
@_org_option
@click.argument("name")
@click.option(
    "--type", "id_type", type=click.Choice(["client", "admin"]), default="client", show_default=True
)
@click.option("--role", type=click.Choice(ROLES), help="Role attribute written into the certificate.")
@click.option("--json", "as_json", is_flag=True)
def register(
    topology: Path | None,
    state_dir: Path | None,
    org: str,
    name: str,
    id_type: str,
    role: str | None,
    as_json: bool,
) -> None:
    """Register NAME and print its one-time enrollment secret (not stored anywhere)."""
    secret = secrets.token_urlsafe(18)
    try:
        ca, _ = _ca(topology, state_dir, org)
        ca.register(IdentitySpec(name, id_type, role), secret=secret)
    except (CAError, TopologyError) as exc:
        fail(exc)
    if as_json:
        echo_json({"name": name, "org": org, "type": id_type, "role": role or "", "secret": secret})
    else:
        console.print(f"registered {name} at {ca.org.ca_name}; give its user this enrollment secret:")
        click.echo(secret)


@identity_group.command()
@network_options
@_org_option
@click.argument("name")
@click.option("--secret", prompt=True, hide_input=True, help="The enrollment secret from `register`.")
@click.option("--json", "as_json", is_flag=True)
def enroll(
    topology: Path | None, state_dir: Path | None, org: str, name: str, secret: str, as_json: bool
) -> None:
    """Enroll NAME: its key and certificate go to the org's identities folder."""
    try:
        ca, _ = _ca(topology, state_dir, org)
        target = ca.enroll(IdentitySpec(name, "client"), secret=secret)
    except (CAError, TopologyError) as exc:
        fail(exc)
    if as_json:
        echo_json({"name": name, "org": org, "mspDir": str(target / "msp")})
    else:
        console.print(f"enrolled {name}; use it with --org {org} --identity {name}")


@identity_group.command()
@network_options
@_org_option
@click.argument("name")
@click.option(
    "--reason", default="unspecified", show_default=True, help="RFC 5280 reason, e.g. keycompromise."
)
@click.option("--json", "as_json", is_flag=True)
def revoke(
    topology: Path | None, state_dir: Path | None, org: str, name: str, reason: str, as_json: bool
) -> None:
    """Revoke NAME at the CA and publish the CRL in the channel, so it can no longer transact."""
    try:
        ca, net = _ca(topology, state_dir, org)
        crl = ca.revoke(name, reason)
        ChannelConfig(net.tools).set_revocation_list(ca.org, crl)
    except (CAError, TopologyError, FabricCommandError) as exc:
        fail(exc)
    if as_json:
        echo_json({"name": name, "org": org, "revoked": True, "crlInChannel": True})
    else:
        console.print(f"revoked {name}; the channel now carries {ca.org.ca_name}'s new CRL")


@identity_group.command("list")
@network_options
@_org_option
@click.option("--json", "as_json", is_flag=True)
def list_identities(topology: Path | None, state_dir: Path | None, org: str, as_json: bool) -> None:
    """Identities registered at the org's CA."""
    try:
        ca, _ = _ca(topology, state_dir, org)
        identities = ca.list_identities()
    except (CAError, TopologyError) as exc:
        fail(exc)
    if as_json:
        echo_json(identities)
        return
    table = Table("name", "type", "role", "max enrollments")
    for i in identities:
        table.add_row(i["name"], i["type"], i["role"], i["maxEnrollments"])
    console.print(table)
