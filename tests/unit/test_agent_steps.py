"""The training agent's step logic (protocol v2) against a Federation contract kept in
memory (no ledger): rounds from commitment to adoption and settlement, publication only
once the commitments closed, a restart after a crash, an unusable and a withheld update,
a replay refusal, and refusals the agent must or must not stop on."""
# The in-memory contract follows chaincode/federation: the same commit or post again
# returns the existing record; a different one is refused as CONFLICT.

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

import grpc
import numpy as np
import pytest
import torch

from fabricml.contracts.federation import AggregatePost, Commitment, Participant, RoundState, Task
from fabricml.federation import fixedpoint
from fabricml.federation.agent import Agent, AgentError, AgentOptions
from fabricml.federation.agent_state import StateError
from fabricml.federation.data import Dataset
from fabricml.federation.participation import Participation
from fabricml.federation.reveals import encoded, read_update
from fabricml.federation.training import LocalTraining
from fabricml.gateway import EndorseError, GatewayError, RefusalCode, is_refusal
from fabricml.gateway.errors import ErrorDetail
from fabricml.models.mlp import MLP, save
from fabricml.registry.digests import sha256_bytes

from .fake_federation import FakeFederation, FakeRegistrar, FakeStore, refused

ME, PEER = "Org1MSP/trainer", "Org2MSP/trainer"


class Crash(BaseException):
    """The agent process dies here (not an error the agent could handle)."""


def _task(rounds: int = 1) -> Task:
    people = tuple(
        Participant(msp_id=k.split("/")[0], subject=k.split("/")[1], slashed=False, stake=100)
        for k in (ME, PEER)
    )
    return Task(
        id="t1", initial_model="init-t1@r0", rounds=rounds, min_participants=2, max_per_org=1, stake=100,
        reward_per_round=30, commit_seconds=300, reveal_seconds=300, aggregate_seconds=300,
        clock_skew_seconds=30, rule="fedavg", creator="Org1MSP", status="running", participants=people,
    )  # fmt: skip


def _data(seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(40, 4)).astype(np.float32)
    return Dataset(features, (features[:, 0] > 0).astype(np.int64), f"data-{seed}")


@dataclass
class Peer:
    """The other org's participant: commits, publishes once the commitments closed, and
    posts the same assessment as the first org that posted (an honest org computing the
    same outcome), each time the agent looks at the task."""

    store: FakeStore
    initial: list[np.ndarray]
    bound_to: str = PEER  # whose bytes it publishes: another key makes them unusable
    publishes: bool = True
    acted: set[tuple[str, int]] = field(default_factory=set)
    raws: dict[int, bytes] = field(default_factory=dict)

    def raw(self, round_: int) -> bytes:
        if round_ not in self.raws:
            update = fixedpoint.encode([np.full_like(a, 0.01 * round_) for a in self.initial])
            context = {"task": "t1", "round": round_, "participant": self.bound_to, "dataset": {}}
            self.raws[round_] = encoded(update, context)
        return self.raws[round_]

    def __call__(self, fed: FakeFederation) -> None:
        me, fed.caller = fed.caller, PEER
        try:
            for r in range(1, min(fed.settled() + 1, fed.task.rounds) + 1):
                self._act(fed, r)
        finally:
            fed.caller = me

    def _act(self, fed: FakeFederation, r: int) -> None:
        if ("commit", r) not in self.acted and fed.task.participant(PEER) and not fed.closed(r):
            raw = self.raw(r)
            fed.commit("t1", r, sha256_bytes(raw), 20, f"https://org2/v1/blobs/{sha256_bytes(raw)}")
            self.acted.add(("commit", r))
        if fed.closed(r) and self.publishes and ("publish", r) not in self.acted:
            self.store.put(self.raw(r))
            self.acted.add(("publish", r))
        first = next((p for p in fed.posts.get(r, []) if p.msp_id != "Org2MSP"), None)
        if first is not None and ("post", r) not in self.acted:
            fed.post_aggregate("t1", r, first.digest, first.scores, first.flagged, first.missing)
            self.acted.add(("post", r))


class LookingFederation(FakeFederation):
    """The peer acts each time the agent reads the task."""

    peer: Callable[[FakeFederation], None] | None = None

    def get_task(self, task_id: str) -> Task:
        if self.peer is not None:
            self.peer(self)
        return super().get_task(task_id)


class CheckingStore(FakeStore):
    """Fails the test if an update is published while its round's commitments are open."""

    fed: FakeFederation | None = None

    def publish(self, path: Path) -> str:
        assert self.fed is not None
        header, _ = read_update(path)
        assert self.fed.closed(header["context"]["round"]), "published before the commitments closed"
        return super().publish(path)


World = tuple[LookingFederation, CheckingStore, Peer]
F = TypeVar("F", bound=LookingFederation)


def _world(tmp_path: Path, fed: F) -> tuple[F, CheckingStore, Peer]:
    torch.manual_seed(0)
    model = MLP([4, 8, 2])
    store = CheckingStore(save(model, tmp_path / "initial"))
    store.fed = fed
    peer = Peer(store, [p.detach().numpy() for p in model.state_dict().values()])
    fed.peer = peer
    return fed, store, peer


@pytest.fixture
def world(tmp_path: Path) -> World:
    return _world(tmp_path, LookingFederation(_task(rounds=2), caller=ME))


def _agent(
    fed: FakeFederation, store: FakeStore, tmp_path: Path, log: list[str]
) -> tuple[Agent, FakeRegistrar]:
    registrar = FakeRegistrar()
    links = Participation(federation=fed, key=ME, store=store, registrar=registrar, blob_url="https://org1")
    training = LocalTraining(epochs=1, batch_size=8)
    options = AgentOptions(task="t1", data=_data(1), state_dir=tmp_path / "state", training=training,
                           poll_seconds=0, settle_in_background=False)  # fmt: skip
    return Agent(links, options, log.append), registrar


def _index(log: list[str], text: str) -> int:
    return next(i for i, line in enumerate(log) if text in line)


def test_rounds_go_from_commitment_to_adoption_before_their_settlement(world: World, tmp_path: Path) -> None:
    fed, store, _ = world
    log: list[str] = []
    agent, registrar = _agent(fed, store, tmp_path, log)
    summary = agent.run()
    calls = [c for c in fed.calls if c.startswith(("commit", "post", "settle"))]
    for r in (1, 2):  # each once, in the protocol's order
        steps = [
            f"commit {PEER} {r}",
            f"commit {ME} {r}",
            f"post Org1MSP {r}",
            f"post Org2MSP {r}",
            f"settle {r}",
        ]
        assert all(calls.count(s) == 1 for s in steps), calls
        assert max(calls.index(s) for s in steps[:2]) < calls.index(steps[2]) < calls.index(steps[4]), calls
    assert len(calls) == 10, calls
    # The agent adopted round 1's model as soon as the quorum agreed, before anyone settled it.
    assert _index(log, "round 1: adopted") < _index(log, "round 1: settled")
    assert [line["status"] for line in summary["rounds"]] == ["FINALIZED", "FINALIZED"]
    assert summary["rounds"][1]["aggregateDigest"] == fed.results[2].aggregate_digest
    assert 0 <= summary["rounds"][0]["heldoutAccuracy"] <= 1 and summary["rounds"][0]["samples"] == 32
    adopted = fixedpoint.from_bytes((agent.files.dir / "global.bin").read_bytes())
    assert fixedpoint.digest(adopted) == fed.results[2].aggregate_digest
    assert registrar.registered == [1, 2]  # Org1MSP is the first agreeing org and ME its poster
    mine = next(c for c in fed.committed[1] if c.participant.key == ME)
    assert mine.uri == f"https://org1/v1/blobs/{mine.digest}" and mine.digest in store.blobs
    assert mine.samples == 32
    # The reference direction of round r starts from the agreed model after round r - 2.
    assert agent.model.before_last_step(1) is None
    initial = agent.model.before_last_step(2)
    assert initial is not None and fixedpoint.digest(initial) == fixedpoint.digest(agent.model.kept(0))
    after_one = agent.model.before_last_step(3)
    assert after_one is not None and fixedpoint.digest(after_one) == fed.results[1].aggregate_digest


class CrashingFederation(LookingFederation):
    """Records the agent's commitment on the ledger, then the agent dies before noting it."""

    crash_on_commit: bool = True

    def commit(self, task_id: str, round_: int, digest: str, samples: int, uri: str) -> Commitment:
        made = super().commit(task_id, round_, digest, samples, uri)
        if self.caller == ME and self.crash_on_commit:
            self.crash_on_commit = False
            raise Crash
        return made


def test_a_restarted_agent_publishes_the_bytes_it_committed_without_training_again(tmp_path: Path) -> None:
    fed, store, _ = _world(tmp_path, CrashingFederation(_task(), caller=ME))
    log: list[str] = []
    first, _ = _agent(fed, store, tmp_path, log)
    with pytest.raises(Crash):
        first.run()
    committed = next(c.digest for c in fed.committed[1] if c.participant.key == ME)
    second, _ = _agent(fed, store, tmp_path, log)  # the same state directory
    second.run()
    assert sum("training on" in line for line in log) == 1, log
    assert fed.results[1].status == "FINALIZED" and not fed.results[1].slashed
    assert committed in store.published  # committing it again returned the same record


def test_an_unusable_update_is_flagged_and_the_round_goes_on(tmp_path: Path) -> None:
    fed, store, peer = _world(tmp_path, LookingFederation(_task(), caller=ME))
    peer.bound_to = "Org2MSP/someone-else"
    log: list[str] = []
    agent, _ = _agent(fed, store, tmp_path, log)
    summary = agent.run()
    post = fed.posts[1][0]
    assert post.flagged == (PEER,) and post.scores[PEER] == 0 and post.missing == ()
    assert fed.results[1].slashed == (PEER,) and summary["rounds"][0]["status"] == "FINALIZED"
    assert any("published an unusable update" in line and "bound to" in line for line in log), log


def test_a_withheld_update_is_missing_only_after_the_reveal_window_and_the_round_closes(
    tmp_path: Path,
) -> None:
    fed, store, peer = _world(tmp_path, LookingFederation(_task(), caller=ME))
    peer.publishes = False
    agent, _ = _agent(fed, store, tmp_path, [])
    for _ in range(4):  # inside the reveal window: the agent waits for the bytes
        assert agent.step() is False
    assert fed.closed(1) and 1 not in fed.posts
    fed.reveal_deadline_passed = True
    agent.run()
    post = fed.posts[1][0]
    assert post.missing == (PEER,) and list(post.scores) == [ME]
    # One usable update of the two needed: the model stays, the withholder loses its stake.
    assert fed.results[1].status == "CLOSED" and fed.results[1].slashed == (PEER,)
    kept = fixedpoint.from_bytes((agent.files.dir / "global.bin").read_bytes())
    assert (
        post.digest
        == fixedpoint.digest(kept)
        == fixedpoint.digest(agent.model.weights("", store.initial_model))
    )


@dataclass
class CopiedFirst(LookingFederation):
    """Someone commits the agent's digest just before the agent does (a copier)."""

    copied: list[str] = field(default_factory=list)

    def commit(self, task_id: str, round_: int, digest: str, samples: int, uri: str) -> Commitment:
        if self.caller == ME and not self.copied:
            self.copied.append(digest)
            self.digests.add(digest)
        return super().commit(task_id, round_, digest, samples, uri)


def test_a_replay_refusal_makes_the_agent_encode_its_update_anew(tmp_path: Path) -> None:
    fed, store, _ = _world(tmp_path, CopiedFirst(_task(), caller=ME))
    log: list[str] = []
    agent, _ = _agent(fed, store, tmp_path, log)
    agent.run()
    mine = next(c for c in fed.committed[1] if c.participant.key == ME)
    assert mine.digest != fed.copied[0] and mine.digest in store.published
    assert fed.results[1].status == "FINALIZED"
    assert any("encoded it anew" in line for line in log), log


class ForbiddingFederation(LookingFederation):
    def commit(self, task_id: str, round_: int, digest: str, samples: int, uri: str) -> Commitment:
        raise refused(RefusalCode.FORBIDDEN, f"{self.caller} has no role=trainer")


def test_a_refusal_the_agent_cannot_explain_stops_it(tmp_path: Path) -> None:
    fed, store, _ = _world(tmp_path, ForbiddingFederation(_task(), caller=ME))
    agent, _ = _agent(fed, store, tmp_path, [])
    with pytest.raises(GatewayError) as err:
        agent.run()
    assert is_refusal(err.value, RefusalCode.FORBIDDEN)
    assert agent.files.load().committed == {}  # nothing recorded as committed


@dataclass
class NotYet(LookingFederation):
    refusals: list[int] = field(default_factory=list)

    def commit(self, task_id: str, round_: int, digest: str, samples: int, uri: str) -> Commitment:
        if self.caller == ME and not self.refusals:
            self.refusals.append(round_)
            raise refused(RefusalCode.WRONG_PHASE, "round 0's commitments are open")
        return super().commit(task_id, round_, digest, samples, uri)


def test_a_wrong_phase_commit_is_not_yet_and_the_agent_tries_again(tmp_path: Path) -> None:
    fed, store, _ = _world(tmp_path, NotYet(_task(), caller=ME))
    agent, _ = _agent(fed, store, tmp_path, [])
    assert agent.step() is False and agent.files.load().committed == {}
    agent.run()
    assert fed.refusals == [1] and fed.results[1].status == "FINALIZED"


@dataclass
class MovedOn(LookingFederation):
    """The round's phase moves on between the agent's look and its next call, once."""

    moved: list[int] = field(default_factory=list)

    def aggregates(self, task_id: str, round_: int) -> tuple[AggregatePost, ...]:
        if self.caller == ME and not self.moved:
            self.moved.append(round_)
            raise refused(RefusalCode.WRONG_PHASE, f"round {round_} is settled")
        return super().aggregates(task_id, round_)


def test_a_phase_that_moved_on_before_the_call_makes_the_agent_look_again(tmp_path: Path) -> None:
    fed, store, _ = _world(tmp_path, MovedOn(_task(), caller=ME))
    log: list[str] = []
    agent, _ = _agent(fed, store, tmp_path, log)
    summary = agent.run()
    assert fed.moved == [1] and any("phase moved on" in line for line in log), log
    assert [line["status"] for line in summary["rounds"]] == ["FINALIZED"]


@dataclass
class Disagreeing(LookingFederation):
    """The endorsers disagree (a few blocks apart) on the agent's first commitment."""

    disagreed: list[int] = field(default_factory=list)

    def commit(self, task_id: str, round_: int, digest: str, samples: int, uri: str) -> Commitment:
        if self.caller == ME and not self.disagreed:
            self.disagreed.append(round_)
            detail = ErrorDetail("127.0.0.1:7110", "Org2MSP", "ProposalResponsePayloads do not match")
            raise EndorseError("not enough endorsements", grpc.StatusCode.ABORTED, [detail], "t")
        return super().commit(task_id, round_, digest, samples, uri)


def test_endorsers_that_disagree_past_the_gateways_retries_make_the_agent_look_again(tmp_path: Path) -> None:
    fed, store, _ = _world(tmp_path, Disagreeing(_task(), caller=ME))
    log: list[str] = []
    agent, _ = _agent(fed, store, tmp_path, log)
    summary = agent.run()
    assert fed.disagreed == [1] and any("looking again" in line for line in log), log
    assert [line["status"] for line in summary["rounds"]] == ["FINALIZED"]


@dataclass
class OutSinceOurLook(LookingFederation):
    """Round 1's settlement takes the agent out between its look and its round-2 commit."""

    kicked: bool = False

    def commit(self, task_id: str, round_: int, digest: str, samples: int, uri: str) -> Commitment:
        if self.caller == ME and round_ == 2:
            self.kicked = True
            raise refused(RefusalCode.FORBIDDEN, f"{ME} is out of task t1 since round 1 (slashed)")
        return super().commit(task_id, round_, digest, samples, uri)

    def get_task(self, task_id: str) -> Task:
        task = super().get_task(task_id)
        if not self.kicked:
            return task
        out = tuple(replace(p, out="slashed", out_round=1) if p.key == ME else p for p in task.participants)
        return replace(task, participants=out)


def test_a_participant_taken_out_since_its_look_stops_without_an_error(tmp_path: Path) -> None:
    fed, store, _ = _world(tmp_path, OutSinceOurLook(_task(rounds=2), caller=ME))
    log: list[str] = []
    agent, _ = _agent(fed, store, tmp_path, log)
    agent.run()
    assert fed.kicked and any("takes no further part" in line for line in log), log
    assert 2 not in agent.files.load().committed


class OtherQuorum(LookingFederation):
    def get_round_state(self, task_id: str, round_: int) -> RoundState:
        state = super().get_round_state(task_id, round_)
        return replace(state, agreed_digest="ab" * 32) if state.commits_closed else state


def test_a_quorum_on_a_model_this_agent_does_not_compute_stops_it(tmp_path: Path) -> None:
    fed, store, _ = _world(tmp_path, OtherQuorum(_task(), caller=ME))
    agent, _ = _agent(fed, store, tmp_path, [])
    with pytest.raises(AgentError, match="the quorum agreed on abab"):
        agent.run()


def test_a_state_file_of_another_version_is_refused_clearly(world: World, tmp_path: Path) -> None:
    fed, store, _ = world
    folder = tmp_path / "state" / "t1" / "agents" / ME.replace("/", "_")
    folder.mkdir(parents=True)
    (folder / "state.json").write_text(json.dumps({"version": 1, "rounds_done": 2}))
    with pytest.raises(StateError, match="fresh state directory"):
        _agent(fed, store, tmp_path, [])
