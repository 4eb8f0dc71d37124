"""The training agent's step logic against a Federation contract kept in memory (no ledger):
a round from commit to adoption, a restart after a crash, an unusable reveal, refusals."""
# The in-memory contract follows chaincode/federation: the same commit, reveal or post
# again returns the existing record; a different one is refused as CONFLICT.

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pytest
import torch

from fabricml.contracts.federation import Commitment, Participant, Task
from fabricml.federation import fixedpoint
from fabricml.federation.agent import Agent, AgentOptions
from fabricml.federation.agent_state import StateError
from fabricml.federation.data import Dataset
from fabricml.federation.participation import Participation
from fabricml.federation.training import LocalTraining
from fabricml.gateway import GatewayError, RefusalCode, is_refusal
from fabricml.models.mlp import MLP, save
from fabricml.registry.digests import sha256_bytes

from .fake_federation import FakeFederation, FakeRegistrar, FakeStore, refused

ME, PEER = "Org1MSP/trainer", "Org1MSP/trainer2"


class Crash(BaseException):
    """The agent process dies here (not an error the agent could handle)."""


def _task(rounds: int = 1) -> Task:
    people = tuple(Participant(msp_id="Org1MSP", subject=s, slashed=False) for s in ("trainer", "trainer2"))
    return Task(
        id="t1", initial_model="fed-t1@r0", rounds=rounds, min_participants=2, stake=100, reward_per_round=30,
        commit_seconds=300, reveal_seconds=300, aggregate_seconds=300, rule="fedavg", creator="Org1MSP",
        status="running", round=1, phase="COMMIT", phase_deadline="", participants=people, escrow=30,
    )  # fmt: skip


def _data(seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(40, 4)).astype(np.float32)
    return Dataset(features, (features[:, 0] > 0).astype(np.int64), f"data-{seed}")


@dataclass
class Peer:
    """The other participant, acting whenever the agent looks at the task."""

    store: FakeStore
    initial: list[np.ndarray]
    bound_to: str = PEER  # whose bytes it reveals: another key makes them unusable
    acted: set[tuple[int, str]] = field(default_factory=set)

    def raw(self, round_: int) -> bytes:
        update = fixedpoint.encode([np.full_like(a, 0.01) for a in self.initial])
        context = {"task": "t1", "round": round_, "participant": self.bound_to, "dataset": {}}
        return fixedpoint.to_bytes(update, context)

    def __call__(self, fed: FakeFederation) -> None:
        t, me = fed.task, fed.caller
        if t.status != "running" or (t.round, t.phase) in self.acted:
            return
        fed.caller = PEER
        try:
            if t.phase == "COMMIT":
                fed.commit(t.id, t.round, sha256_bytes(self.raw(t.round)), 20)
            elif t.phase == "REVEAL":
                digest = self.store.put(self.raw(t.round))
                fed.reveal(t.id, t.round, digest, f"https://org1/v1/blobs/{digest}")
        finally:
            fed.caller = me
        self.acted.add((t.round, t.phase))


class LookingFederation(FakeFederation):
    """The peer acts each time the agent reads the task."""

    peer: Callable[[FakeFederation], None] | None = None

    def get_task(self, task_id: str) -> Task:
        if self.peer is not None:
            self.peer(self)
        return self.task


@pytest.fixture
def world(tmp_path: Path) -> tuple[LookingFederation, FakeStore, Peer]:
    torch.manual_seed(0)
    model = MLP([4, 8, 2])
    store = FakeStore(save(model, tmp_path / "initial"))
    fed = LookingFederation(_task(), caller=ME)
    peer = Peer(store, [p.detach().numpy() for p in model.state_dict().values()])
    fed.peer = peer
    return fed, store, peer


def _agent(
    fed: FakeFederation, store: FakeStore, tmp_path: Path, log: list[str]
) -> tuple[Agent, FakeRegistrar]:
    registrar = FakeRegistrar()
    links = Participation(federation=fed, key=ME, store=store, registrar=registrar, blob_url="https://org1")
    training = LocalTraining(epochs=1, batch_size=8)
    options = AgentOptions(
        task="t1", data=_data(1), state_dir=tmp_path / "state", training=training, poll_seconds=0
    )
    return Agent(links, options, log.append), registrar


def test_a_round_goes_from_commit_to_reveal_to_post_to_adoption(
    world: tuple[LookingFederation, FakeStore, Peer], tmp_path: Path
) -> None:
    fed, store, _ = world
    log: list[str] = []
    agent, registrar = _agent(fed, store, tmp_path, log)
    summary = agent.run()
    assert fed.calls == [  # the peer acts as the agent looks, so just before it
        f"commit {PEER} 1", f"commit {ME} 1", "advance to REVEAL", f"reveal {PEER} 1", f"reveal {ME} 1",
        "advance to AGGREGATE", "post Org1MSP 1", "advance to done",
    ]  # fmt: skip
    [line] = summary["rounds"]
    assert line["status"] == "FINALIZED" and line["aggregateDigest"] == fed.results[1].aggregate_digest
    assert 0 <= line["heldoutAccuracy"] <= 1 and line["samples"] == 32
    adopted = fixedpoint.from_bytes((agent.files.dir / "global.bin").read_bytes())
    assert fixedpoint.digest(adopted) == fed.results[1].aggregate_digest
    assert registrar.registered == [1]  # its org agreed first and it is the org's poster
    mine = next(c for c in fed.committed[1] if c.participant.key == ME)
    assert mine.revealed and mine.uri == f"https://org1/v1/blobs/{mine.digest}" and mine.digest in store.blobs


class CrashingFederation(LookingFederation):
    """Records the agent's commitment on the ledger, then the agent dies before noting it."""

    crash_on_commit: bool = True

    def commit(self, task_id: str, round_: int, digest: str, samples: int) -> Commitment:
        made = super().commit(task_id, round_, digest, samples)
        if self.caller == ME and self.crash_on_commit:
            self.crash_on_commit = False
            raise Crash
        return made


def test_a_restarted_agent_reveals_the_bytes_it_committed_without_training_again(
    world: tuple[LookingFederation, FakeStore, Peer], tmp_path: Path
) -> None:
    _, store, peer = world
    fed = CrashingFederation(_task(), caller=ME)
    fed.peer = peer
    log: list[str] = []
    first, _ = _agent(fed, store, tmp_path, log)
    with pytest.raises(Crash):
        first.run()
    committed = next(c.digest for c in fed.committed[1] if c.participant.key == ME)
    second, _ = _agent(fed, store, tmp_path, log)  # the same state directory
    second.run()
    assert sum("training on" in line for line in log) == 1, log
    assert fed.results[1].status == "FINALIZED" and not fed.results[1].slashed
    mine = next(c for c in fed.committed[1] if c.participant.key == ME)
    assert mine.digest == committed and mine.revealed  # committing it again returned the same record


def test_an_unusable_reveal_is_flagged_and_the_round_goes_on(
    world: tuple[LookingFederation, FakeStore, Peer], tmp_path: Path
) -> None:
    fed, store, peer = world
    peer.bound_to = "Org2MSP/someone-else"
    log: list[str] = []
    agent, _ = _agent(fed, store, tmp_path, log)
    summary = agent.run()
    [post] = fed.posts[1]
    assert post.flagged == (PEER,) and post.scores[PEER] == 0
    assert fed.results[1].slashed == (PEER,) and summary["rounds"][0]["status"] == "FINALIZED"
    assert any("revealed an unusable update" in line and "bound to" in line for line in log), log


class ForbiddingFederation(LookingFederation):
    def commit(self, task_id: str, round_: int, digest: str, samples: int) -> Commitment:
        raise refused(RefusalCode.FORBIDDEN, f"{self.caller} has no role=trainer")


def test_a_refusal_the_agent_cannot_explain_stops_it(
    tmp_path: Path, world: tuple[LookingFederation, FakeStore, Peer]
) -> None:
    _, store, _ = world
    fed = ForbiddingFederation(_task(), caller=ME)
    agent, _ = _agent(fed, store, tmp_path, [])
    with pytest.raises(GatewayError) as err:
        agent.run()
    assert is_refusal(err.value, RefusalCode.FORBIDDEN)
    assert agent.files.load().committed == {}  # nothing recorded as committed


def test_advance_refused_because_the_phase_moved_on_is_no_error(
    world: tuple[LookingFederation, FakeStore, Peer], tmp_path: Path
) -> None:
    fed, store, _ = world
    agent, _ = _agent(fed, store, tmp_path, [])

    def late(task_id: str) -> Task:
        raise refused(RefusalCode.WRONG_PHASE, "another participant advanced the task first")

    fed.advance = late  # type: ignore[method-assign]
    fed.task = replace(fed.task, phase_deadline="2000-01-01T00:00:00Z")  # past: the agent asks to advance
    assert agent.step(fed.get_task("t1")) is False  # committed, asked, refused as WRONG_PHASE: fine


def test_a_state_file_of_another_version_is_refused_clearly(
    world: tuple[LookingFederation, FakeStore, Peer], tmp_path: Path
) -> None:
    fed, store, _ = world
    folder = tmp_path / "state" / "t1" / "agents" / ME.replace("/", "_")
    folder.mkdir(parents=True)
    (folder / "state.json").write_text(json.dumps({"roundsDone": 2, "history": {}}))
    with pytest.raises(StateError, match="fresh state directory"):
        _agent(fed, store, tmp_path, [])
