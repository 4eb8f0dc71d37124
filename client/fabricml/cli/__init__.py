"""The `fabricml` command: one entry point for every org operator task."""

from __future__ import annotations

import click

from fabricml.api.cli import api_group
from fabricml.network.cli import network_group
from fabricml.network.sitecli import chaincode_group, site_group
from fabricml.network.sitecli import create as consortium_create

from .attest import attest_group, serve
from .events import events_command
from .federated import agent_group, fed_group
from .governance import consortium_group
from .identity import identity_group
from .model import model_group
from .tx import tx_group


@click.group()
@click.version_option(package_name="fabricml")
def main() -> None:
    """fabricml: verifiable machine learning for consortia on Hyperledger Fabric."""


main.add_command(network_group)
main.add_command(site_group)
main.add_command(chaincode_group)
main.add_command(tx_group)
main.add_command(events_command)
main.add_command(identity_group)
main.add_command(model_group)
main.add_command(serve)
main.add_command(attest_group)
main.add_command(api_group)
main.add_command(agent_group)
main.add_command(fed_group)
# One `consortium` group: founding (sites) and governance proposals.
consortium_group.add_command(consortium_create)
main.add_command(consortium_group)
