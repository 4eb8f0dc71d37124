"""The root command: shared options into the App, every command group under it."""

from __future__ import annotations

import click

from fabricml.network.cli import network_group
from fabricml.network.sitecli import chaincode_group, site_group
from fabricml.network.sitecli import create as consortium_create

from .agent import agent_group
from .api import api_group
from .app import App, Shell, shared_options
from .attest import attest_group, serve
from .events import events_command
from .fed import fed_group
from .flower import flower_group
from .governance import consortium_group
from .identity import identity_group
from .model import model_group
from .token import token_group
from .tx import tx_group


@click.group(cls=Shell)
@shared_options
@click.version_option(package_name="fabricml")
@click.pass_context
def main(ctx: click.Context) -> None:
    """fabricml: verifiable machine learning for consortia on Hyperledger Fabric."""
    ctx.ensure_object(App)


for group in (network_group, site_group, chaincode_group, tx_group, events_command, identity_group,
              model_group, serve, attest_group, api_group, agent_group, fed_group, flower_group,
              consortium_group, token_group):  # fmt: skip
    main.add_command(group)
# One `consortium` group: founding a consortium (sites) and governance proposals.
consortium_group.add_command(consortium_create)
