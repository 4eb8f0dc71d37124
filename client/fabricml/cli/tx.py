"""`fabricml tx submit|evaluate`: run a chaincode transaction as one of an org's identities."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click

from fabricml.contracts import open_connection
from fabricml.gateway import CommitError
from fabricml.gateway.retry import DEFAULT, NO_RETRY

from .app import App, identity_option, org_option, pass_app, shared_options, show_bytes


@dataclass(frozen=True)
class Invocation:
    """What the user asked the chaincode for."""

    function: str  # FUNCTION or Contract:FUNCTION
    args: tuple[str, ...]
    contract: str | None
    chaincode: str | None
    transient: tuple[str, ...]  # KEY=VALUE
    endorsing: tuple[str, ...]  # MSP IDs
    org: str
    identity: str
    no_retry: bool

    def contract_and_function(self) -> tuple[str | None, str]:
        if ":" in self.function and self.contract is None:
            name, _, fn = self.function.partition(":")
            return name, fn
        return self.contract, self.function

    def transient_map(self) -> dict[str, str]:
        out = {}
        for pair in self.transient:
            key, sep, value = pair.partition("=")
            if not sep or not key:
                raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--transient")
            out[key] = value
        return out


def _options(f: Any) -> Any:
    f = click.option(
        "--no-retry", is_flag=True,
        help="Try once: report the first failure instead of riding out node restarts and "
        "peer discovery (e.g. to see whether an org's peer can endorse now).",
    )(f)  # fmt: skip
    f = click.option(
        "--endorsing-org", "endorsing", multiple=True, help="MSP ID that must endorse (repeatable)."
    )(f)
    f = click.option(
        "--transient", multiple=True, help="KEY=VALUE private input, never stored (repeatable)."
    )(f)
    f = click.option("--chaincode", help="Chaincode name (default: the network's).")(f)
    f = click.option("--contract", help="Contract name, or give FUNCTION as Contract:Function.")(f)
    f = click.argument("args", nargs=-1)(f)
    f = click.argument("function")(f)
    f = identity_option("user1")(f)
    f = org_option(help="Organization whose peer and identity to use.")(f)
    return shared_options(f)


@click.group("tx")
def tx_group() -> None:
    """Submit or evaluate chaincode transactions through the org's Gateway."""


def _run(app: App, call: Invocation, submit: bool) -> dict[str, Any]:
    profile = app.profile(call.org)
    contract_name, fn = call.contract_and_function()
    options: dict[str, Any] = {"transient": call.transient_map(), "endorsing_organizations": call.endorsing}
    retry = NO_RETRY if call.no_retry else DEFAULT
    with open_connection(profile, call.identity, retry=retry) as connection:
        c = connection.network.get_contract(call.chaincode or profile.chaincode_name, contract_name)
        if not submit:
            return {"result": show_bytes(c.evaluate_transaction(fn, *call.args, **options))}
        result, commit = c.submit_async(fn, *call.args, **options)
        status = commit.status()
        if not status.successful:
            raise CommitError(status.transaction_id, status.code, status.code_name, status.block_number)
    return {
        "transactionId": status.transaction_id,
        "blockNumber": status.block_number,
        "status": status.code_name,
        "result": show_bytes(result),
    }


def _show(app: App, data: dict[str, Any]) -> None:
    if app.as_json:
        app.emit(data)
        return
    click.echo(data["result"])
    if "transactionId" in data:
        click.echo(f"committed {data['transactionId']} in block {data['blockNumber']}", err=True)


@tx_group.command("submit")
@_options
@pass_app
def submit(app: App, **given: Any) -> None:
    """Endorse, order and commit FUNCTION(ARGS...); print its result."""
    _show(app, _run(app, Invocation(**given), submit=True))


@tx_group.command("evaluate")
@_options
@pass_app
def evaluate(app: App, **given: Any) -> None:
    """Run FUNCTION(ARGS...) on a peer without ordering it; print its result."""
    _show(app, _run(app, Invocation(**given), submit=False))
