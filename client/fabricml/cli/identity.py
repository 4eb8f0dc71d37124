"""`fabricml identity`: register, enroll, revoke and list identities at the org's Fabric CA."""

from __future__ import annotations

import secrets

import click
from rich.table import Table

from fabricml.network.channelconfig import ChannelConfig
from fabricml.network.identities import CertificateAuthority, IdentitySpec

from .app import App, org_option, pass_app, shared_options

ROLES = ("trainer", "inference", "auditor")


def _ca(app: App, org: str) -> CertificateAuthority:
    net = app.network
    return CertificateAuthority(net.binaries, net.layout, net.topology.org(org))


@click.group("identity")
def identity_group() -> None:
    """Manage identities through the organization's own Fabric CA."""


@identity_group.command()
@shared_options
@org_option(help="Organization whose CA to use.")
@click.argument("name")
@click.option(
    "--type", "id_type", type=click.Choice(["client", "admin"]), default="client", show_default=True
)
@click.option("--role", type=click.Choice(ROLES), help="Role attribute written into the certificate.")
@pass_app
def register(app: App, org: str, name: str, id_type: str, role: str | None) -> None:
    """Register NAME and print its one-time enrollment secret (not stored anywhere)."""
    secret = secrets.token_urlsafe(18)
    ca = _ca(app, org)
    ca.register(IdentitySpec(name, id_type, role), secret=secret)
    if app.as_json:
        app.emit({"name": name, "org": org, "type": id_type, "role": role or "", "secret": secret})
    else:
        app.say(f"registered {name} at {ca.org.ca_name}; give its user this enrollment secret:")
        click.echo(secret)


@identity_group.command()
@shared_options
@org_option(help="Organization whose CA to use.")
@click.argument("name")
@click.option("--secret", prompt=True, hide_input=True, help="The enrollment secret from `register`.")
@pass_app
def enroll(app: App, org: str, name: str, secret: str) -> None:
    """Enroll NAME: its key and certificate go to the org's identities folder."""
    target = _ca(app, org).enroll(IdentitySpec(name, "client"), secret=secret)
    data = {"name": name, "org": org, "mspDir": str(target / "msp")}
    app.answer(data, f"enrolled {name}; use it with --org {org} --identity {name}")


@identity_group.command()
@shared_options
@org_option(help="Organization whose CA to use.")
@click.argument("name")
@click.option(
    "--reason", default="unspecified", show_default=True, help="RFC 5280 reason, e.g. keycompromise."
)
@pass_app
def revoke(app: App, org: str, name: str, reason: str) -> None:
    """Revoke NAME at the CA and publish the CRL in the channel, so it can no longer transact."""
    ca = _ca(app, org)
    crl = ca.revoke(name, reason)
    ChannelConfig(app.network.tools).set_revocation_list(ca.org, crl)
    data = {"name": name, "org": org, "revoked": True, "crlInChannel": True}
    app.answer(data, f"revoked {name}; the channel now carries {ca.org.ca_name}'s new CRL")


@identity_group.command("list")
@shared_options
@org_option(help="Organization whose CA to use.")
@pass_app
def list_identities(app: App, org: str) -> None:
    """Identities registered at the org's CA."""
    identities = _ca(app, org).list_identities()
    if app.as_json:
        app.emit(identities)
        return
    table = Table("name", "type", "role", "max enrollments")
    for i in identities:
        table.add_row(i["name"], i["type"], i["role"], i["maxEnrollments"])
    app.results.print(table)
