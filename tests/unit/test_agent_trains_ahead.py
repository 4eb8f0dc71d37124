"""Training ahead: the agent trains round r+1 from its own outcome of round r while the
quorum's block comes, and commits that update only once the quorum agreed on exactly that
model; otherwise it drops it and trains from the model the round ended with. Against the
in-memory Federation contract of test_agent_steps (no ledger)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from fabricml.contracts.federation import AggregatePost, Commitment, Task
from fabricml.federation import fixedpoint
from fabricml.federation.agent import Agent, AgentOptions
from fabricml.federation.participant import Participant
from fabricml.federation.participation import Participation
from fabricml.federation.reveals import read_update
from fabricml.federation.training import LocalTraining

from .fake_federation import FakeFederation, FakeRegistrar, FakeStore
from .test_agent_steps import ME, PEER, LookingFederation, _data, _index, _task, _world

TRAINING = LocalTraining(epochs=1, batch_size=8)


def _agent(
    fed: FakeFederation, store: FakeStore, state: Path, log: list[str], ahead: bool = True,
    registrar: FakeRegistrar | None = None,
) -> Agent:  # fmt: skip
    links = Participation(federation=fed, key=ME, store=store, registrar=registrar or FakeRegistrar(),
                          blob_url="https://org1")  # fmt: skip
    options = AgentOptions(task="t1", data=_data(1), state_dir=state, training=TRAINING, poll_seconds=0,
                           settle_in_background=False, train_ahead=ahead)  # fmt: skip
    return Agent(links, options, log.append)


@pytest.fixture
def fixed_nonce(monkeypatch: pytest.MonkeyPatch) -> None:
    """Update headers carry a random nonce; fixed here so that two runs' bytes compare."""
    monkeypatch.setattr(secrets, "token_hex", lambda n=8: "00" * n)


def _run(tmp_path: Path, name: str, ahead: bool) -> tuple[LookingFederation, Agent, FakeStore, list[str]]:
    fed, store, _ = _world(tmp_path / name, LookingFederation(_task(rounds=3), caller=ME))
    log: list[str] = []
    agent = _agent(fed, store, tmp_path / name / "state", log, ahead)
    agent.run()
    return fed, agent, store, log


def _mine(fed: FakeFederation, round_: int) -> str:
    return next(c.digest for c in fed.committed[round_] if c.participant.key == ME)


@pytest.mark.usefixtures("fixed_nonce")
def test_an_update_trained_ahead_is_the_same_bytes_and_committed_only_after_the_agreement(
    tmp_path: Path,
) -> None:
    ahead_fed, ahead, ahead_store, ahead_log = _run(tmp_path, "ahead", ahead=True)
    after_fed, _, after_store, after_log = _run(tmp_path, "after", ahead=False)
    for r in (1, 2, 3):  # the bytes each published (the agents gave their copies of past rounds away)
        assert ahead_store.blobs[_mine(ahead_fed, r)] == after_store.blobs[_mine(after_fed, r)], f"round {r}"
    assert [x.aggregate_digest for x in ahead_fed.results.values()] == [
        x.aggregate_digest for x in after_fed.results.values()
    ]
    for r in (2, 3):  # trained before the quorum's agreement on its base, committed after it
        assert _index(ahead_log, f"round {r}: training") < _index(ahead_log, f"round {r - 1}: adopted")
        assert "before the quorum agreed" in ahead_log[_index(ahead_log, f"round {r}: training")]
        calls = ahead_fed.calls
        assert calls.index(f"post Org2MSP {r - 1}") < calls.index(f"commit {ME} {r}"), calls
        assert _index(after_log, f"round {r - 1}: adopted") < _index(after_log, f"round {r}: training")
    assert sum("training on" in line for line in ahead_log) == 3, ahead_log
    assert not list(ahead.files.dir.glob("prepared-*")) and not list(ahead.files.dir.glob(".outcome-*"))
    # The held-out metrics reach every round's line, measured after the next commitment.
    assert all(0 <= m["heldoutAccuracy"] <= 1 for m in ahead.files.metrics())
    assert [m["round"] for m in ahead.files.metrics()] == [1, 2, 3]


@dataclass
class ClosesWithoutQuorum(LookingFederation):
    """Round 1: the other org posts another assessment and the aggregate deadline passes,
    so the round closes without an agreed model (the global model stays)."""

    def _decide(self, round_: int) -> tuple[str, AggregatePost | None] | None:
        if round_ == 1 and len(self.posts.get(1, [])) == 2:
            return "CLOSED", None
        return super()._decide(round_)

    def post_aggregate(
        self,
        task_id: str,
        round_: int,
        digest: str,
        scores: Mapping[str, int],
        flagged: Sequence[str],
        missing: Sequence[str] = (),
    ) -> AggregatePost:
        if self.caller == PEER and round_ == 1:
            digest = "cd" * 32
        return super().post_aggregate(task_id, round_, digest, scores, flagged, missing)


def test_an_update_trained_ahead_on_a_model_the_round_did_not_end_with_is_dropped(tmp_path: Path) -> None:
    fed, store, _ = _world(tmp_path, ClosesWithoutQuorum(_task(rounds=2), caller=ME))
    log: list[str] = []
    agent = _agent(fed, store, tmp_path / "state", log)
    agent.run()
    assert fed.results[1].status == "CLOSED"
    assert "before the quorum agreed" in log[_index(log, "round 2: training")]
    assert _index(log, "round 2: the quorum agreed on another base") < _index(log, "round 2: committed")
    # Round 2 trained again, from the model round 1 ended with: the initial one.
    initial = agent.model.kept(0)
    assert fixedpoint.digest(agent.model.kept(1)) == fixedpoint.digest(initial)
    expected, _ = Participant(ME, agent.train_data, agent.model.config, TRAINING).update(initial, 2)
    _, committed = read_update(agent.files.dir / "update-2.bin")
    assert all((a == b).all() for a, b in zip(committed, expected, strict=True))
    assert sum("training on" in line for line in log) == 3, log
    assert not list(agent.files.dir.glob("prepared-*"))


class SettledAtOnce(LookingFederation):
    """Another org settles each round as soon as its quorum agreed, so the settlement is
    there before this agent (training ahead) looks again and adopts."""

    def get_task(self, task_id: str) -> Task:
        task = super().get_task(task_id)
        r = self.settled() + 1
        if r <= self.task.rounds and self._quorum(r) is not None:
            self.settle(task_id, r)
            task = super().get_task(task_id)
        return task


def test_a_round_settled_before_this_agent_adopted_it_is_recorded_and_registered_after(
    tmp_path: Path,
) -> None:
    fed, store, _ = _world(tmp_path, SettledAtOnce(_task(rounds=2), caller=ME))
    registrar = FakeRegistrar()
    log: list[str] = []
    agent = _agent(fed, store, tmp_path / "state", log, registrar=registrar)
    agent.run()
    assert _index(log, "round 1: adopted") < _index(log, "round 1: FINALIZED")
    assert registrar.registered == [1, 2], "\n".join(log)
    lines = agent.files.metrics()
    assert [m["round"] for m in lines] == [1, 2] and all(
        "heldoutAccuracy" in m and "samples" in m for m in lines
    )


class Crash(BaseException):
    """The agent process dies here."""


@dataclass
class DiesAfterItsRoundTwoCommit(LookingFederation):
    """Records the agent's round-2 commitment (trained ahead), then the agent dies."""

    died: bool = False

    def commit(self, task_id: str, round_: int, digest: str, samples: int, uri: str) -> Commitment:
        made = super().commit(task_id, round_, digest, samples, uri)
        if self.caller == ME and round_ == 2 and not self.died:
            self.died = True
            raise Crash
        return made


def test_an_agent_that_dies_after_committing_an_update_trained_ahead_publishes_it_on_restart(
    tmp_path: Path,
) -> None:
    fed, store, _ = _world(tmp_path, DiesAfterItsRoundTwoCommit(_task(rounds=2), caller=ME))
    log: list[str] = []
    with pytest.raises(Crash):
        _agent(fed, store, tmp_path / "state", log).run()
    assert "before the quorum agreed" in log[_index(log, "round 2: training")]
    committed = _mine(fed, 2)
    again = _agent(fed, store, tmp_path / "state", log)  # the same state directory
    assert again.state.rounds_done == 1 and 2 in again.state.training  # saved before the commit
    again.run()
    assert sum("training on" in line for line in log) == 2, log  # round 2 was not trained again
    assert committed in store.published and fed.results[2].status == "FINALIZED"
    assert [m["round"] for m in again.files.metrics()] == [1, 2]
