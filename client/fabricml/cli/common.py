"""Options and helpers shared by the org operator commands."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console

from fabricml.gateway.errors import GatewayError
from fabricml.gateway.profile import ConnectionProfile
from fabricml.network.cli import DEFAULT_TOPOLOGY
from fabricml.network.layout import default_state_dir
from fabricml.network.network import Network
from fabricml.network.topology import load

console = Console(stderr=True)


def network_options(f: Any) -> Any:
    f = click.option(
        "--state-dir", type=click.Path(path_type=Path, file_okay=False), help="Network state directory."
    )(f)
    f = click.option("--topology", type=click.Path(path_type=Path, dir_okay=False), help="Topology file.")(f)
    return f


def org_options(f: Any) -> Any:
    f = click.option(
        "--identity", default="user1", show_default=True, help="Which of the org's identities signs."
    )(f)
    f = click.option(
        "--org", default="org1", show_default=True, help="Organization whose peer and identity to use."
    )(f)
    return network_options(f)


def open_network(topology: Path | None, state_dir: Path | None) -> Network:
    topo = load(topology or Path(os.environ.get("FABRICML_TOPOLOGY", DEFAULT_TOPOLOGY)))
    return Network(topo, state_dir or default_state_dir(topo.name), console=console)


def profile_for(topology: Path | None, state_dir: Path | None, org: str) -> ConnectionProfile:
    net = open_network(topology, state_dir)
    return ConnectionProfile.load(net.layout.profile(net.topology.org(org)))


def fail(exc: BaseException) -> NoReturn:
    console.print(f"[red]error:[/] {exc}", highlight=False)
    sys.exit(1)


def gateway_error_json(exc: GatewayError) -> dict[str, Any]:
    return {
        "error": type(exc).__name__,
        "message": str(exc).splitlines()[0],
        "transactionId": exc.transaction_id,
        "details": [{"address": d.address, "mspId": d.msp_id, "message": d.message} for d in exc.details],
    }


def show_bytes(value: bytes) -> str:
    """Text as text; anything else as hex, so output never breaks a terminal."""
    try:
        return value.decode()
    except UnicodeDecodeError:
        return "0x" + value.hex()


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))
