"""`fabricml events`: follow chaincode events or blocks, optionally resuming from a checkpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from fabricml.contracts import OrgConnection, open_connection
from fabricml.gateway import FileCheckpointer, sync
from fabricml.gateway.events import ChaincodeEvent, block_number_of, transaction_ids

from .app import App, identity_option, org_option, pass_app, shared_options, show_bytes


def _chaincode_event_json(e: ChaincodeEvent) -> dict[str, Any]:
    return {
        "blockNumber": e.block_number,
        "transactionId": e.transaction_id,
        "chaincode": e.chaincode_name,
        "event": e.event_name,
        "payload": show_bytes(e.payload),
    }


def _stream(
    connection: OrgConnection, blocks: str | None, chaincode: str | None, start: int | None,
    checkpointer: FileCheckpointer | None,
) -> sync.Events[Any]:  # fmt: skip
    if blocks:
        return connection.network.block_events(start, checkpointer, kind=blocks)  # type: ignore[arg-type]
    return connection.network.chaincode_events(
        chaincode or connection.profile.chaincode_name, start, checkpointer
    )


def _record(item: Any, blocks: str | None, checkpointer: FileCheckpointer | None) -> dict[str, Any]:
    if blocks:
        number = block_number_of(item)
        if checkpointer:
            checkpointer.checkpoint_block(number)
        return {"blockNumber": number, "kind": blocks, "transactionIds": transaction_ids(item)}
    if checkpointer:
        checkpointer.checkpoint_chaincode_event(item)
    return _chaincode_event_json(item)


@click.command("events")
@shared_options
@org_option(help="Organization whose peer and identity to use.")
@identity_option("user1")
@click.option("--blocks", type=click.Choice(["full", "filtered", "private"]), help="Follow blocks instead.")
@click.option("--chaincode", help="Chaincode whose events to follow (default: the network's).")
@click.option("--start-block", type=int, help="First block to read (default: the next one committed).")
@click.option(
    "--checkpoint", type=click.Path(path_type=Path, dir_okay=False), help="Resume from and save to FILE."
)
@click.option("--limit", type=int, help="Stop after this many events or blocks.")
@pass_app
def events_command(
    app: App, org: str, identity: str, blocks: str | None, chaincode: str | None, start_block: int | None,
    checkpoint: Path | None, limit: int | None,
) -> None:  # fmt: skip
    """Follow chaincode events (or blocks) as they are committed; Ctrl-C stops.
    With --json: one JSON object per line."""
    checkpointer = FileCheckpointer(checkpoint) if checkpoint else None
    count = 0
    with open_connection(app.profile(org), identity) as connection:
        stream = _stream(connection, blocks, chaincode, start_block, checkpointer)
        try:
            with stream:
                for item in stream:
                    data = _record(item, blocks, checkpointer)
                    click.echo(json.dumps(data, sort_keys=True) if app.as_json else _line(data))
                    count += 1
                    if limit is not None and count >= limit:
                        break
        except KeyboardInterrupt:
            pass


def _line(data: dict[str, Any]) -> str:
    if "event" in data:
        return (
            f"block {data['blockNumber']} tx {data['transactionId'][:16]}… {data['event']}: {data['payload']}"
        )
    return f"block {data['blockNumber']} ({data['kind']}): {len(data['transactionIds'])} transaction(s)"
