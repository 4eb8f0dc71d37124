"""`fabricml api`: serve an org's admin API, and tell how to reach it."""

from __future__ import annotations

import os

import click

from .app import App, pass_app, shared_options


@click.group("api")
def api_group() -> None:
    """The org admin REST API and dashboard (mutual TLS)."""


@api_group.command()
@shared_options
@click.option("--org", required=True, help="Organization whose API to run.")
@click.option("--port", type=int, help="Default: the org's base port + 60.")
@pass_app
def serve(app: App, org: str, port: int | None) -> None:
    """Run ORG's API in the foreground (`fabricml network up` already starts one per org)."""
    from fabricml.api.server import serve as run
    from fabricml.api.settings import ApiSettings

    listen = app.network.topology.org(org)  # an unknown org is named before the server starts
    overrides: dict[str, object] = {"org": org, "state_dir": app.network.layout.root}
    if "FABRICML_API_HOST" not in os.environ:  # the address its certificate names
        overrides["host"] = listen.host
    if port:
        overrides["port"] = port
    os.environ.pop("FABRICML_API_ORG", None)
    run(ApiSettings(**overrides))  # type: ignore[arg-type]


@api_group.command()
@shared_options
@pass_app
def urls(app: App) -> None:
    """Each org's API and dashboard URL and how to authenticate."""
    from fabricml.api.access import access_lines

    for line in access_lines(app.network.topology, app.network.layout):
        click.echo(line)
