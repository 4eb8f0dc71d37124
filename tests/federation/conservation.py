"""Token conservation on the real network: every token ever minted is in an org's balance
or held by a federated task (stakes, rewards left, carry-overs, forfeits: its escrow)."""

from __future__ import annotations

import json
import queue
import threading
from typing import Any

from fabricml.contracts import FederationClient, TokenClient, open_connection
from fabricml.demo.admins import OrgAdmins


def task_ids(c: OrgAdmins, quiet_seconds: float = 3.0) -> set[str]:
    """Every task created on the channel: the TaskCreated events from block 0 to the height
    when asked (the stream would wait for more; it is read until it falls quiet past it)."""
    with open_connection(c.profile(c.orgs[0]), "auditor") as connection:
        height = connection.network.height()
        events = connection.network.chaincode_events(connection.profile.chaincode_name, start_block=0)
        found: queue.Queue[Any] = queue.Queue()

        def read() -> None:
            try:
                for event in events:
                    found.put(event)
            except Exception as exc:  # reported below, after the stream is closed
                found.put(exc)

        threading.Thread(target=read, daemon=True, name="task-events").start()
        ids: set[str] = set()
        try:
            while True:
                try:
                    event = found.get(timeout=quiet_seconds)
                except queue.Empty:
                    break
                if isinstance(event, Exception):
                    raise event
                if event.event_name == "TaskCreated":
                    ids.add(json.loads(event.payload)["id"])
                if event.block_number >= height - 1:
                    break
        finally:
            events.close()
    return ids


def holdings(c: OrgAdmins) -> dict[str, int]:
    """supply, balances (every member org's) and escrow (every task's)."""
    token = c.client(c.orgs[0], "auditor", TokenClient)
    fed = c.client(c.orgs[0], "auditor", FederationClient)
    balances = sum(token.get_balance(c.msp(o)).amount for o in c.orgs)
    escrow = sum(fed.get_task(t).escrow for t in sorted(task_ids(c)))
    return {"supply": token.get_supply().amount, "balances": balances, "escrow": escrow}


def assert_tokens_conserved(c: OrgAdmins) -> None:
    held = holdings(c)
    assert held["balances"] + held["escrow"] == held["supply"], f"tokens not conserved: {held}"
