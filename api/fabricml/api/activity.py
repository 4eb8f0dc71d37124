"""What happened on the ledger, for the dashboard: the chaincode's events from block 0 on.

The chaincode has no listing of tasks, claims or inference services; their creation
events are, so the index below is rebuilt from them at every start."""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from fabricml.gateway import GatewayError

from .ledger import OrgLedger

log = logging.getLogger("fabricml.api.activity")


@dataclass(frozen=True)
class LedgerEvent:
    event: str
    block: int
    transaction_id: str
    summary: str


def summarize(name: str, payload: dict[str, Any]) -> str:
    if "name" in payload and "version" in payload:
        return f"{payload['name']}@{payload['version']} ({payload.get('status', '')})"
    if "taskId" in payload:
        return f"task {payload['taskId']} round {payload.get('round')}: {payload.get('status', '')}"
    if name == "BatchAnchored":
        svc = payload.get("service", {})
        who = f"{svc.get('mspId')}/{svc.get('subject')}"
        return f"{who} batch {payload.get('sequence')}: {payload.get('count')} receipts"
    if "participant" in payload:
        p = payload["participant"]
        return f"{p.get('mspId')}/{p.get('subject')} round {payload.get('round', '')}"
    for key in ("id", "mspId"):
        if key in payload:
            return f"{payload[key]} {payload.get('status') or payload.get('phase') or ''}".strip()
    return ""


@dataclass
class ActivityIndex:
    """Task, claim and service ids seen in events, and the latest events."""

    tasks: list[str] = field(default_factory=list)
    claims: list[str] = field(default_factory=list)
    services: list[tuple[str, str]] = field(default_factory=list)
    recent: deque[LedgerEvent] = field(default_factory=lambda: deque(maxlen=200))
    counts: Counter[str] = field(default_factory=Counter)
    last_block: int = -1
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, block: int, tx_id: str, raw: bytes) -> None:
        try:
            payload = json.loads(raw) if raw else {}
        except ValueError:
            payload = {}
        payload = payload if isinstance(payload, dict) else {}
        with self.lock:
            if name == "TaskCreated" and payload.get("id") not in self.tasks:
                self.tasks.append(str(payload.get("id")))
            if name == "ClaimOpened" and payload.get("id") not in self.claims:
                self.claims.append(str(payload.get("id")))
            if name == "BatchAnchored":
                svc = payload.get("service", {})
                key = (str(svc.get("mspId")), str(svc.get("subject")))
                if key not in self.services:
                    self.services.append(key)
            self.counts[name] += 1
            self.recent.appendleft(LedgerEvent(name, block, tx_id, summarize(name, payload)))
            self.last_block = block


class EventFollower:
    """Follows the chaincode's events in a thread; reconnects after the peer goes away."""

    def __init__(self, ledger: OrgLedger, identity: str, index: ActivityIndex) -> None:
        self.ledger = ledger
        self.identity = identity
        self.index = index
        self._stop = threading.Event()
        self._events: Any = None
        self._thread = threading.Thread(target=self._run, name="fabricml-api-events", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._events is not None:
            self._events.close()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        seen: set[tuple[int, str]] = set()
        while not self._stop.is_set():
            start = max(self.index.last_block, 0)
            try:
                network = self.ledger.gateway(self.identity).get_network(self.ledger.profile.channel_name)
                self._events = network.chaincode_events(self.ledger.profile.chaincode_name, start_block=start)
                for ev in self._events:
                    if (ev.block_number, ev.transaction_id) in seen:
                        continue
                    seen.add((ev.block_number, ev.transaction_id))
                    self.index.add(ev.event_name, ev.block_number, ev.transaction_id, ev.payload)
            except (GatewayError, RuntimeError) as exc:
                if not self._stop.is_set():
                    log.warning("chaincode event stream ended: %s; reconnecting", str(exc).splitlines()[0])
            self._stop.wait(2.0)
