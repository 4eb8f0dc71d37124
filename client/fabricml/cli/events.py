"""`fabricml events`: follow chaincode events or blocks, optionally resuming from a checkpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from fabricml.gateway import FileCheckpointer, GatewayError, sync
from fabricml.gateway.events import ChaincodeEvent, block_number_of, transaction_ids
from fabricml.network.topology import TopologyError

from .common import fail, org_options, profile_for, show_bytes


def _chaincode_event_json(e: ChaincodeEvent) -> dict[str, Any]:
    return {
        "blockNumber": e.block_number,
        "transactionId": e.transaction_id,
        "chaincode": e.chaincode_name,
        "event": e.event_name,
        "payload": show_bytes(e.payload),
    }


@click.command("events")
@org_options
@click.option("--blocks", type=click.Choice(["full", "filtered", "private"]), help="Follow blocks instead.")
@click.option("--chaincode", help="Chaincode whose events to follow (default: the network's).")
@click.option("--start-block", type=int, help="First block to read (default: the next one committed).")
@click.option(
    "--checkpoint", type=click.Path(path_type=Path, dir_okay=False), help="Resume from and save to FILE."
)
@click.option("--limit", type=int, help="Stop after this many events or blocks.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def events_command(
    org: str,
    identity: str,
    topology: Path | None,
    state_dir: Path | None,
    blocks: str | None,
    chaincode: str | None,
    start_block: int | None,
    checkpoint: Path | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """Follow chaincode events (or blocks) as they are committed; Ctrl-C stops."""
    try:
        profile = profile_for(topology, state_dir, org)
        ident, signer, hash_ = profile.identity(identity)
    except (TopologyError, ValueError) as exc:
        fail(exc)
    checkpointer = FileCheckpointer(checkpoint) if checkpoint else None
    count = 0
    with profile.peer().sync_channel() as channel:
        net = sync.connect(channel, ident, signer, hash_).get_network(profile.channel_name)
        stream: sync.Events[Any]
        if blocks:
            stream = net.block_events(start_block, checkpointer, kind=blocks)  # type: ignore[arg-type]
        else:
            stream = net.chaincode_events(chaincode or profile.chaincode_name, start_block, checkpointer)
        try:
            with stream:
                for item in stream:
                    if blocks:
                        number = block_number_of(item)
                        data = {
                            "blockNumber": number,
                            "kind": blocks,
                            "transactionIds": transaction_ids(item),
                        }
                        if checkpointer:
                            checkpointer.checkpoint_block(number)
                    else:
                        data = _chaincode_event_json(item)
                        if checkpointer:
                            checkpointer.checkpoint_chaincode_event(item)
                    click.echo(json.dumps(data, sort_keys=True) if as_json else _line(data))
                    count += 1
                    if limit is not None and count >= limit:
                        break
        except GatewayError as exc:
            fail(exc)
        except KeyboardInterrupt:
            pass


def _line(data: dict[str, Any]) -> str:
    if "event" in data:
        return (
            f"block {data['blockNumber']} tx {data['transactionId'][:16]}… {data['event']}: {data['payload']}"
        )
    return f"block {data['blockNumber']} ({data['kind']}): {len(data['transactionIds'])} transaction(s)"
