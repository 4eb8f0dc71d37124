"""The `fabricml` command: one entry point for every org operator task."""

from __future__ import annotations

import click
from fabricml.network.cli import network_group


@click.group()
@click.version_option(package_name="fabricml")
def main() -> None:
    """fabricml: verifiable machine learning for consortia on Hyperledger Fabric."""


main.add_command(network_group)
