"""What a training agent remembers on disk, so a restarted agent picks up in any phase.

`AgentState` is one versioned JSON file, written atomically and always BEFORE the ledger
hears of what it records (the update's bytes before its commitment, and so on). Beside it:
the update bytes per round, the current global model, the round models still to register,
and one metrics line per finished round."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from fabricml.contracts.records import json_name
from fabricml.registry.spares import Spares, new_file

from .evidence import History

if TYPE_CHECKING:
    from .training import TrainingReport

STATE_VERSION = 2  # 2: protocol v2 (publish once commitments close, adopt before settlement)
SPARE_FROM = 1 << 20  # files this large are written over a spare (state.json is not)


class AgentError(RuntimeError):
    """The agent cannot go on (e.g. the quorum's model cannot be reproduced, or the state
    directory is not the one that committed)."""


class StateError(RuntimeError):
    """The agent's state directory cannot be used (e.g. written by another version)."""


@dataclass(frozen=True)
class TrainingRecord:
    """This participant's local training in one round."""

    samples: int
    loss: float
    seconds: float
    samples_per_second: float
    device: str
    epsilon: float  # differential privacy spent so far (0 without DP)

    @classmethod
    def of(cls, report: TrainingReport, epsilon: float) -> TrainingRecord:
        return cls(
            report.samples, report.loss, report.seconds, report.samples_per_second, report.device, epsilon
        )

    def to_metrics(self) -> dict[str, Any]:
        return {json_name(k): v for k, v in asdict(self).items()}  # samplesPerSecond, ...


@dataclass(frozen=True)
class RoundModel:
    """A finalized round's global model that this agent's org registers, with its lineage."""

    round: int
    rule: str
    datasets: dict[str, dict[str, Any]]  # participant key -> dataset fingerprint (JSON)
    aggregate_digest: str
    round_tx: str
    parent: str  # name@version of the previous round's model, or the initial model
    metrics: dict[str, float]


@dataclass
class AgentState:
    """Everything the agent did in this task, by round."""

    rounds_done: int = 0  # rounds whose agreed model was adopted (or that closed unchanged)
    settled_read: int = 0  # rounds whose settlement was read (one metrics line each)
    dp_rounds: int = 0  # rounds trained with differential privacy (for the accountant)
    history: History = field(default_factory=History)  # evidence across rounds
    committed: dict[int, str] = field(default_factory=dict)  # round -> committed digest
    published: list[int] = field(default_factory=list)
    posted: list[int] = field(default_factory=list)
    training: dict[int, TrainingRecord] = field(default_factory=dict)
    adopted: dict[int, dict[str, Any]] = field(default_factory=dict)  # round -> metrics at adoption
    to_register: list[RoundModel] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        raw = asdict(self)
        raw["history"] = self.history.to_json()
        return {"version": STATE_VERSION, **raw}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> AgentState:
        if raw.get("version") != STATE_VERSION:
            raise StateError(
                f"agent state version {raw.get('version')!r}, this agent reads version {STATE_VERSION}: "
                "take part with a fresh state directory"
            )
        return cls(
            rounds_done=int(raw["rounds_done"]),
            settled_read=int(raw["settled_read"]),
            dp_rounds=int(raw["dp_rounds"]),
            history=History.from_json(raw["history"]),
            committed={int(k): str(v) for k, v in raw["committed"].items()},
            published=[int(r) for r in raw["published"]],
            posted=[int(r) for r in raw["posted"]],
            training={int(k): TrainingRecord(**v) for k, v in raw["training"].items()},
            adopted={int(k): dict(v) for k, v in raw["adopted"].items()},
            to_register=[RoundModel(**m) for m in raw["to_register"]],
        )


class StateDir:
    """The agent's folder: state.json, update and model bytes, metrics.jsonl.

    Large files may be written `later`, on a thread of their own, off the round's critical
    path; every state save and read waits for them first, so state.json never names a
    file that is not whole on disk."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._writer: ThreadPoolExecutor | None = None
        self._writes: list[Future[None]] = []
        self.spares = Spares(directory / ".spares")  # files of past rounds, to write over
        for unfinished in directory.glob(".*.bin.*"):  # a write killed midway (one agent per folder)
            self.spares.give(unfinished)
        self.saved = AgentState()  # a copy of the state as state.json holds it: what a restart reads

    def load(self) -> AgentState:
        raw = self.read("state.json")
        self.saved = AgentState.from_json(json.loads(raw)) if raw is not None else AgentState()
        return AgentState.from_json(json.loads(raw)) if raw is not None else AgentState()

    def save(self, state: AgentState) -> None:
        self.flush()
        raw = json.dumps(state.to_json(), indent=1, sort_keys=True).encode()
        self.put("state.json", raw)
        self.saved = AgentState.from_json(json.loads(raw))

    def later(self, write: Callable[[], None]) -> None:
        """Run `write` (which writes files atomically in this folder) in the background,
        in order with the other writes started here."""
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, "fabricml-state-write")
        self._writes.append(self._writer.submit(write))

    def flush(self) -> None:
        """Wait for the writes started `later`; the first that failed raises here."""
        writes, self._writes = self._writes, []
        for done in writes:
            done.result()

    def close(self) -> None:
        self.flush()
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None

    def path(self, name: str) -> Path:
        return self.dir / name

    def read(self, name: str) -> bytes | None:
        self.flush()
        path = self.dir / name
        return path.read_bytes() if path.exists() else None

    def put(self, name: str, data: bytes) -> None:
        write_atomically(self.dir / name, data, self.spares if len(data) >= SPARE_FROM else None)

    def give(self, path: Path) -> None:
        """A file no restart can need any more: a spare to write over (or deleted)."""
        self.spares.give(path)

    def metric(self, line: dict[str, Any]) -> None:
        with (self.dir / "metrics.jsonl").open("a") as f:
            f.write(json.dumps(line, sort_keys=True) + "\n")

    def metrics(self) -> list[dict[str, Any]]:
        path = self.dir / "metrics.jsonl"
        return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def write_atomically(path: Path, data: bytes, spares: Spares | None = None) -> None:
    """A crash leaves the old file or the new one, never half of one. `spares`: written
    over one of them where there is one (fabricml.registry.spares)."""
    with atomic_file(path, spares, len(data)) as f:
        f.write(data)


@contextlib.contextmanager
def atomic_file(path: Path, spares: Spares | None, size: int) -> Iterator[BinaryIO]:
    """A file to write `path`'s new bytes into (about `size` of them): renamed to `path`
    once whole and on disk; removed if the writing fails."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        with new_file(Path(tmp), spares, size) as f:
            yield f
            f.truncate()  # a spare's longer tail goes before the length is made durable
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
