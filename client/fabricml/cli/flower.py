"""`fabricml flower`: an org's side of a Flower-run task (docs/flower.md)."""

from __future__ import annotations

import click

from .app import App, signer_options


@click.group("flower")
def flower_group() -> None:
    """Flower apps on fabricml: each org verifies what the Flower server aggregates."""


@flower_group.command("verify")
@signer_options("admin")
@click.argument("task")
@click.option(
    "--no-post",
    is_flag=True,
    help="Check the org's post instead of posting (when the org's own Flower server posts for it).",
)
@click.option("--rounds", default=0, help="Stop after this round (0: when the task ends).")
def verify(app: App, task: str, org: str, identity: str, no_post: bool, rounds: int) -> None:
    """Recompute every round of TASK from the committed updates, post this org's
    assessment, settle rounds and register the round models this org owes."""
    # Imported here: they load PyTorch and the registry's schemas, which every other
    # `fabricml` command would otherwise pay for at start.
    from fabricml.flower.links import open_links
    from fabricml.flower.verifier import Verifier

    with open_links(app.profile(org), identity, task, app.say) as links:
        verdicts = Verifier(links, task, post=not no_post, log=app.say).run(rounds)
    if app.as_json:
        app.emit([v.__dict__ for v in verdicts])
    if any(v.agreed and v.agreed != v.computed for v in verdicts):
        raise click.ClickException("the quorum agreed on a model this org did not compute")
