"""`fabricml tx submit|evaluate`: run a chaincode transaction as one of an org's identities."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from fabricml.gateway import CommitError, GatewayError, sync
from fabricml.network.topology import TopologyError

from .common import echo_json, fail, gateway_error_json, org_options, profile_for, show_bytes


def _split_function(function: str, contract: str | None) -> tuple[str | None, str]:
    if ":" in function and contract is None:
        name, _, fn = function.partition(":")
        return name, fn
    return contract, function


def _transient(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--transient")
        out[key] = value
    return out


def _options(f: Any) -> Any:
    f = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")(f)
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
    return org_options(f)


@click.group("tx")
def tx_group() -> None:
    """Submit or evaluate chaincode transactions through the org's Gateway."""


def _run(
    submit: bool,
    function: str,
    args: tuple[str, ...],
    contract: str | None,
    chaincode: str | None,
    transient: tuple[str, ...],
    endorsing: tuple[str, ...],
    as_json: bool,
    org: str,
    identity: str,
    topology: Path | None,
    state_dir: Path | None,
) -> None:
    try:
        profile = profile_for(topology, state_dir, org)
        ident, signer, hash_ = profile.identity(identity)
    except (TopologyError, ValueError) as exc:
        fail(exc)
    contract_name, fn = _split_function(function, contract)
    with profile.peer().sync_channel() as channel:
        gw = sync.connect(channel, ident, signer, hash_)
        c = gw.get_network(profile.channel_name).get_contract(
            chaincode or profile.chaincode_name, contract_name
        )
        try:
            if submit:
                result, commit = c.submit_async(
                    fn, *args, transient=_transient(transient), endorsing_organizations=endorsing
                )
                status = commit.status()
                if not status.successful:
                    raise CommitError(
                        status.transaction_id, status.code, status.code_name, status.block_number
                    )
                data = {
                    "transactionId": status.transaction_id,
                    "blockNumber": status.block_number,
                    "status": status.code_name,
                    "result": show_bytes(result),
                }
            else:
                result = c.evaluate_transaction(
                    fn, *args, transient=_transient(transient), endorsing_organizations=endorsing
                )
                data = {"result": show_bytes(result)}
        except GatewayError as exc:
            if as_json:
                echo_json(gateway_error_json(exc))
                raise SystemExit(1) from None
            fail(exc)
        except CommitError as exc:
            if as_json:
                echo_json(
                    {"error": "CommitError", "transactionId": exc.transaction_id, "status": exc.code_name}
                )
                raise SystemExit(1) from None
            fail(exc)
    if as_json:
        echo_json(data)
    else:
        click.echo(data["result"])
        if submit:
            click.echo(f"committed {data['transactionId']} in block {data['blockNumber']}", err=True)


@tx_group.command("submit")
@_options
def submit(**kwargs: object) -> None:
    """Endorse, order and commit FUNCTION(ARGS...); print its result."""
    _run(True, **kwargs)  # type: ignore[arg-type]


@tx_group.command("evaluate")
@_options
def evaluate(**kwargs: object) -> None:
    """Run FUNCTION(ARGS...) on a peer without ordering it; print its result."""
    _run(False, **kwargs)  # type: ignore[arg-type]
