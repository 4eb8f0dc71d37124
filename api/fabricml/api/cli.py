"""`fabricml api`: serve an org's API, and tell how to reach it."""

from __future__ import annotations

import os
from pathlib import Path

import click

from fabricml.network.layout import Layout
from fabricml.network.topology import Topology

from .context import api_port


def _open(topology: Path | None, state_dir: Path | None) -> tuple[Topology, Layout]:
    from fabricml.cli.common import open_network

    net = open_network(topology, state_dir)
    return net.topology, net.layout


@click.group("api")
def api_group() -> None:
    """The org admin REST API and dashboard (mutual TLS)."""


def _network_options(f: click.decorators.FC) -> click.decorators.FC:
    f = click.option(
        "--state-dir", type=click.Path(path_type=Path, file_okay=False), help="Network state directory."
    )(f)
    return click.option("--topology", type=click.Path(path_type=Path, dir_okay=False), help="Topology file.")(
        f
    )


@api_group.command()
@_network_options
@click.option("--org", required=True, help="Organization whose API to run.")
@click.option("--port", type=int, help="Default: the org's base port + 60.")
def serve(topology: Path | None, state_dir: Path | None, org: str, port: int | None) -> None:
    """Run ORG's API in the foreground (`fabricml network up` already starts one per org)."""
    from .server import serve as run
    from .settings import ApiSettings

    topo, layout = _open(topology, state_dir)
    overrides: dict[str, object] = {"org": org, "state_dir": layout.root}
    if "FABRICML_API_HOST" not in os.environ:  # the address its certificate names
        overrides["host"] = topo.org(org).host
    if port:
        overrides["port"] = port
    os.environ.pop("FABRICML_API_ORG", None)
    run(ApiSettings(**overrides))  # type: ignore[arg-type]


def access_lines(topo: Topology, layout: Layout) -> list[str]:
    """URLs of each org's API and dashboard, and the certificates to authenticate with."""
    lines = []
    for org in topo.organizations:
        url = f"https://{org.address(api_port(org))}"
        lines.append(f"{org.name}: dashboard {url}/   API {url}/api/v1/   OpenAPI {url}/openapi.json")
        for identity, can in (("admin", "read and write"), ("auditor", "read and verify")):
            msp = layout.msp(org, identity)
            keys = sorted((msp / "keystore").glob("*")) if (msp / "keystore").is_dir() else []
            key = keys[0] if keys else msp / "keystore" / "<key>"
            lines.append(
                f"  as {identity} ({can}): curl --cacert {layout.ca_cert(org)} "
                f"--cert {msp / 'signcerts' / 'cert.pem'} --key {key} {url}/api/v1/whoami"
            )
    lines.append(
        "Browsers: import the certificate and key (e.g. as PKCS#12: openssl pkcs12 -export -in CERT "
        "-inkey KEY -out admin.p12) and trust the org's CA (ca.pem); see docs/api.md."
    )
    return lines


@api_group.command()
@_network_options
def urls(topology: Path | None, state_dir: Path | None) -> None:
    """Each org's API and dashboard URL and how to authenticate."""
    topo, layout = _open(topology, state_dir)
    for line in access_lines(topo, layout):
        click.echo(line)
