"""Checkpointers remember how far an event listener got, so it can resume after a restart."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Protocol

from .events import ChaincodeEvent


class Checkpointer(Protocol):
    """Where to resume: the block to start from and, within it, the last transaction handled."""

    @property
    def block_number(self) -> int | None: ...

    @property
    def transaction_id(self) -> str | None: ...

    def checkpoint_block(self, block_number: int) -> None: ...

    def checkpoint_transaction(self, block_number: int, transaction_id: str) -> None: ...

    def checkpoint_chaincode_event(self, event: ChaincodeEvent) -> None: ...


class InMemoryCheckpointer:
    """A checkpointer that lives as long as the process."""

    def __init__(self) -> None:
        self._block: int | None = None
        self._tx: str | None = None

    @property
    def block_number(self) -> int | None:
        return self._block

    @property
    def transaction_id(self) -> str | None:
        return self._tx

    def checkpoint_block(self, block_number: int) -> None:
        """Every event of this block is handled: resume at the next block."""
        self._set(block_number + 1, None)

    def checkpoint_transaction(self, block_number: int, transaction_id: str) -> None:
        """Events up to this transaction are handled: resume after it in the same block."""
        self._set(block_number, transaction_id)

    def checkpoint_chaincode_event(self, event: ChaincodeEvent) -> None:
        self.checkpoint_transaction(event.block_number, event.transaction_id)

    def _set(self, block: int, tx: str | None) -> None:
        self._block, self._tx = block, tx


class FileCheckpointer(InMemoryCheckpointer):
    """A checkpointer persisted as JSON in a file, replaced atomically on every checkpoint."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)
        if self.path.exists():
            raw = json.loads(self.path.read_text() or "{}")
            self._block = raw.get("blockNumber")
            self._tx = raw.get("transactionId") or None

    def _set(self, block: int, tx: str | None) -> None:
        super()._set(block, tx)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"blockNumber": block, "transactionId": tx or ""}))
        os.replace(tmp, self.path)
