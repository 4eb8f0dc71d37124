"""Receipts survive crashes and are anchored exactly once.

Every receipt is appended to a write-ahead log (fsync) before its response leaves.
Every N receipts or T milliseconds the pending ones become one Merkle batch whose root
is anchored with Attestation:AnchorBatch; the batch is then recorded locally. After a
crash, receipts past the last recorded batch are pending again, and any batch the
ledger already holds for them (anchored just before the crash) is adopted, not sent
twice: the ledger's sequence numbers refuse replays anyway."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fabricml.contracts import AsyncContract, AttestationClient
from fabricml.contracts.attestation import Batch, BatchRequest, ServiceState
from fabricml.gateway import GatewayError

from . import merkle
from .receipts import InferenceReceipt

log = logging.getLogger("fabricml.attest")


@dataclass(frozen=True)
class AnchoredBatch:
    sequence: int
    first: int
    last: int
    root: str
    tx_id: str
    anchored_at: float = 0.0  # wall-clock time the commit was recorded here

    def to_json(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence,
            "first": self.first,
            "last": self.last,
            "root": self.root,
            "txId": self.tx_id,
            "anchoredAt": self.anchored_at,
        }


def _append(path: Path, record: dict[str, Any]) -> None:
    with path.open("a") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a torn last line from a crash: everything before it stands
    return out


class ReceiptLog:
    """The write-ahead log of receipts and the record of anchored batches."""

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.receipts_path = self.dir / "receipts.wal"
        self.batches_path = self.dir / "batches.log"
        self.receipts: dict[int, InferenceReceipt] = {}
        for raw in _read(self.receipts_path):
            r = InferenceReceipt(raw)
            self.receipts[r.sequence] = r
        self.batches = [
            AnchoredBatch(
                b["sequence"], b["first"], b["last"], b["root"], b["txId"], b.get("anchoredAt", 0.0)
            )
            for b in _read(self.batches_path)
        ]

    @property
    def next_sequence(self) -> int:
        return max(max(self.receipts, default=0), self.last_anchored_receipt) + 1

    @property
    def last_anchored_receipt(self) -> int:
        return self.batches[-1].last if self.batches else 0

    @property
    def next_batch(self) -> int:
        return self.batches[-1].sequence + 1 if self.batches else 1

    def append(self, receipts: list[InferenceReceipt]) -> None:
        """Durably log receipts with one fsync before their responses leave."""
        self.write(receipts)
        self.remember(receipts)

    def write(self, receipts: list[InferenceReceipt]) -> None:
        with self.receipts_path.open("a") as f:
            f.write("".join(json.dumps(r.document, sort_keys=True) + "\n" for r in receipts))
            f.flush()
            os.fsync(f.fileno())

    def remember(self, receipts: list[InferenceReceipt]) -> None:
        for r in receipts:
            self.receipts[r.sequence] = r

    def record(self, batch: AnchoredBatch) -> None:
        _append(self.batches_path, batch.to_json())
        self.batches.append(batch)

    def pending(self) -> list[InferenceReceipt]:
        return [self.receipts[s] for s in sorted(self.receipts) if s > self.last_anchored_receipt]

    def batch_of(self, sequence: int) -> AnchoredBatch | None:
        for b in self.batches:
            if b.first <= sequence <= b.last:
                return b
        return None

    def proof(self, sequence: int) -> dict[str, Any] | None:
        """Receipt, batch, inclusion proof and anchoring transaction; None while pending."""
        batch = self.batch_of(sequence)
        if batch is None:
            return None
        leaves = [self.receipts[s].leaf() for s in range(batch.first, batch.last + 1)]
        proof = merkle.prove(leaves, sequence - batch.first)
        return {
            "receipt": self.receipts[sequence].document,
            "batch": batch.sequence,
            "proof": proof.to_json(),
            "root": batch.root,
            "txId": batch.tx_id,
            "anchoredAt": batch.anchored_at,
        }


class GroupCommit:
    """Concurrent receipts share one fsync (group commit); each caller waits until its
    receipt is on disk. Receipts reach the log in the order they were handed in."""

    def __init__(self, receipts: ReceiptLog) -> None:
        self.log = receipts
        self._buffer: list[tuple[InferenceReceipt, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def write(self, receipt: InferenceReceipt) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._buffer.append((receipt, done))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._flush())
        await done

    async def _flush(self) -> None:
        while self._buffer:
            batch, self._buffer = self._buffer, []
            receipts = [r for r, _ in batch]
            try:
                await asyncio.to_thread(self.log.write, receipts)  # the fsync stays off the event loop
            except OSError as exc:
                for _, done in batch:
                    done.set_exception(exc)
                continue
            self.log.remember(receipts)
            for _, done in batch:
                done.set_result(None)


class Anchorer:
    """Anchors pending receipts every `max_receipts` receipts or `max_delay` seconds."""

    def __init__(
        self,
        receipts: ReceiptLog,
        attestation: AsyncContract[AttestationClient],
        model: str,
        max_receipts: int = 256,
        max_delay: float = 0.5,
    ) -> None:
        self.log = receipts
        self.attestation = attestation
        self.model = model
        self.max_receipts = max_receipts
        self.max_delay = max_delay
        self.wakeup = asyncio.Event()
        self._lock = asyncio.Lock()

    def notify(self) -> None:
        if len(self.log.pending()) >= self.max_receipts:
            self.wakeup.set()

    async def recover(self, msp_id: str, subject: str) -> None:
        """Adopt batches the ledger holds that the local record lost in a crash."""
        state = await self.attestation.call(lambda a: a.get_service(msp_id, subject))
        while self.log.next_batch <= state.last_sequence:
            seq = self.log.next_batch
            batch = await self._batch(msp_id, subject, seq)
            first, last = batch.first_receipt, batch.last_receipt
            if not all(s in self.log.receipts for s in range(first, last + 1)):
                self._start_after(state)
                return
            leaves = [self.log.receipts[s].leaf() for s in range(first, last + 1)]
            if merkle.root(leaves).hex() != batch.root:
                raise RuntimeError(
                    f"ledger batch {seq} does not match the receipts in {self.log.receipts_path}"
                )
            self.log.record(AnchoredBatch(seq, first, last, batch.root, batch.tx_id))
            log.info("adopted batch %d (receipts %d-%d) anchored before a restart", seq, first, last)

    async def _batch(self, msp_id: str, subject: str, sequence: int) -> Batch:
        return await self.attestation.call(lambda a: a.get_batch(msp_id, subject, sequence))

    def _start_after(self, state: ServiceState) -> None:
        """The ledger holds batches of this identity that this log never wrote (a fresh log,
        or another instance before it): number on after them, unless that would reuse
        sequence numbers of receipts still pending here."""
        clash = [s for s in self.log.receipts if self.log.last_anchored_receipt < s <= state.last_receipt]
        if clash:
            raise RuntimeError(
                f"receipts {clash[0]}..{clash[-1]} in {self.log.receipts_path} collide with receipts another "
                "log of this identity anchored; give each inference service its own identity"
            )
        # An empty range (first > last) that only moves the counters on.
        self.log.record(
            AnchoredBatch(state.last_sequence, state.last_receipt + 1, state.last_receipt, "", "")
        )
        log.info(
            "continuing after batch %d and receipt %d already on the ledger",
            state.last_sequence,
            state.last_receipt,
        )

    async def anchor_pending(self) -> AnchoredBatch | None:
        async with self._lock:
            pending = self.log.pending()[: self.max_receipts]
            if not pending:
                return None
            first, last = pending[0].sequence, pending[-1].sequence
            root = merkle.root([r.leaf() for r in pending]).hex()
            sequence = self.log.next_batch
            request = BatchRequest(
                sequence=sequence,
                model=self.model,
                root=root,
                count=len(pending),
                first_receipt=first,
                last_receipt=last,
            )
            result = await self.attestation.call(lambda a: a.anchor_batch(request))
            batch = AnchoredBatch(sequence, first, last, root, result.tx_id, time.time())
            self.log.record(batch)
            return batch

    async def run(self) -> None:
        """Anchor until cancelled; a failed anchoring is retried at the next tick."""
        while True:
            with contextlib.suppress(TimeoutError):  # the timer tick: anchor whatever is pending
                await asyncio.wait_for(self.wakeup.wait(), timeout=self.max_delay)
            self.wakeup.clear()
            try:
                while (
                    await self.anchor_pending() is not None and len(self.log.pending()) >= self.max_receipts
                ):
                    pass
            except GatewayError as exc:
                log.warning("anchoring failed, will retry: %s", str(exc).splitlines()[0])
