"""The mod, the strategy and the verifier against an in-memory Federation contract: each
client commits before its reply leaves, the server counts only replies that match their
commitment, the orgs' verifiers recompute the same outcome, a server that lies about the
aggregate is outvoted and the clients refuse to train on what it sends."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg
from flwr.supercore.task_identity import TaskIdentity

from fabricml.federation import fixedpoint
from fabricml.federation.round_post import RoundPost
from fabricml.federation.training import global_parameters
from fabricml.flower.initial import load_initial
from fabricml.flower.links import Links
from fabricml.flower.messages import REPLY_KEY, CommitmentRecord, Settings
from fabricml.flower.mod import make_mod
from fabricml.flower.strategy import AccountableStrategy
from fabricml.flower.updates import digest, read_update
from fabricml.flower.verifier import Verifier
from fabricml.models.cnn import SmallCNN
from fabricml.models.mlp import save

from .fake_ledger import FakeLedger, FakeStore, task_of

KEYS = ["Org1MSP/trainer", "Org2MSP/trainer", "Org3MSP/trainer"]
TASK = "t1"


@pytest.fixture(autouse=True)
def server_process() -> None:
    """Messages are made as in a ServerApp's process (Flower's runtime sets this identity)."""
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 1, 0


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[FakeLedger, FakeStore]]:
    torch.manual_seed(0)
    store = FakeStore(model_dir=save(SmallCNN(8, 10, channels=4), tmp_path / "initial"))
    yield FakeLedger(task_of(TASK, KEYS, rounds=3)), store


def links(ledger: FakeLedger, store: FakeStore, key: str) -> Links:
    return Links(ledger.as_caller(key), key, store, None, f"https://{key.split('/')[0]}/v1/blobs/")


def context(partition: int) -> Context:
    config: dict[str, str | int | float | bool] = {
        "fabricml-task": TASK,
        "fabricml-participants": " ".join(KEYS),
        "fabricml-wait-seconds": 20,
    }
    return Context(
        run_id=1,
        node_id=partition + 1,
        node_config={"partition-id": partition},
        state=RecordDict(),
        run_config=config,
    )


def train_message(arrays: ArrayRecord, round_: int, node: int) -> Message:
    content = RecordDict({"arrays": arrays, "config": ConfigRecord({"server-round": round_})})
    return Message(content, dst_node_id=node, message_type=MessageType.TRAIN)


def trainer(step: float) -> Any:
    """A ClientApp's train: every weight moves by `step` (a different step per client)."""

    def train(msg: Message, ctx: Context) -> Message:
        received = msg.content.array_records["arrays"]
        by = np.float32(step * (1 + int(ctx.node_config["partition-id"])))
        moved = {k: Array(v.numpy() + by) for k, v in received.items()}
        metrics = MetricRecord({"num-examples": 50, "train-loss": 1.0})
        return Message(RecordDict({"arrays": ArrayRecord(moved), "metrics": metrics}), reply_to=msg)

    return train


def start_arrays(store: FakeStore) -> ArrayRecord:
    initial = load_initial(store, f"{TASK}-initial@1")
    keys = list(SmallCNN(8, 10, channels=4).state_dict())
    return ArrayRecord({k: Array(a) for k, a in zip(keys, global_parameters(initial.weights), strict=True)})


def clients_train(
    ledger: FakeLedger, store: FakeStore, arrays: ArrayRecord, round_: int, step: float = 0.01
) -> list[Message]:
    """Every client's mod and app at once (the mod waits for every commitment)."""
    mod = make_mod(lambda ctx, s: links(ledger, store, KEYS[int(ctx.node_config["partition-id"])]))
    replies: list[Message | None] = [None] * len(KEYS)

    def one(i: int) -> None:
        replies[i] = mod(train_message(arrays, round_, i + 1), context(i), trainer(step))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(KEYS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(r is not None for r in replies)
    return [r for r in replies if r is not None]


class Sampling(FedAvg):
    """FedAvg without a Grid: the tests hand the replies themselves."""

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        return []


def server(
    ledger: FakeLedger,
    store: FakeStore,
    cls: type[AccountableStrategy] = AccountableStrategy,
    wait: float = 20,
) -> AccountableStrategy:
    return cls(Sampling(), links(ledger, store, "Org1MSP/admin"), TASK, wait=wait)


def test_each_client_commits_its_exact_update_before_its_reply_leaves(
    world: tuple[FakeLedger, FakeStore],
) -> None:
    ledger, store = world
    arrays = start_arrays(store)
    replies = clients_train(ledger, store, arrays, 1)
    global_fp = fixedpoint.encode(arrays.to_numpy_ndarrays())
    shapes = [tuple(a.shape) for a in global_fp]
    for i, reply in enumerate(replies):
        assert not reply.has_error(), reply.error
        record = CommitmentRecord.of(reply.content)
        committed = ledger.commits[1][KEYS[i]]
        assert (
            record.participant == KEYS[i]
            and record.digest == committed.digest
            and record.uri == committed.uri
        )
        raw = store.fetch(committed.digest)  # published, and the digest is the committed one
        assert digest(raw) == committed.digest
        update, header = read_update(raw, TASK, 1, KEYS[i], shapes)
        trained = fixedpoint.encode(reply.content["arrays"].to_numpy_ndarrays())  # type: ignore[union-attr]
        assert all(np.array_equal(u, t - g) for u, t, g in zip(update, trained, global_fp, strict=True))
        assert header["nonce"] and header == record.context


def test_round_one_refuses_a_global_model_that_is_not_the_registered_initial_one(
    world: tuple[FakeLedger, FakeStore],
) -> None:
    ledger, store = world
    arrays = start_arrays(store)
    bent = ArrayRecord({k: Array(v.numpy() + np.float32(0.5)) for k, v in arrays.items()})
    called: list[int] = []
    mod = make_mod(lambda ctx, s: links(ledger, store, KEYS[0]))
    reply = mod(train_message(bent, 1, 1), context(0), lambda m, c: called.append(1) or m)  # type: ignore[func-returns-value]
    assert reply.has_error() and "refuses to train round 1" in (reply.error.reason or ""), reply.error
    assert not called and 1 not in ledger.commits  # not trained, nothing committed


def test_the_server_counts_only_replies_that_match_their_commitment(
    world: tuple[FakeLedger, FakeStore],
) -> None:
    ledger, store = world
    arrays = start_arrays(store)
    s = server(ledger, store, wait=2)  # no verifier runs: no quorum comes
    s.configure_train(1, arrays, ConfigRecord(), None)  # type: ignore[arg-type]
    replies = clients_train(ledger, store, arrays, 1)
    # org3's reply is swapped for other arrays under the same commitment record
    forged_arrays = ArrayRecord({k: Array(v.numpy() + np.float32(1.0)) for k, v in arrays.items()})
    forged = RecordDict(
        {
            "arrays": forged_arrays,
            "metrics": MetricRecord({"num-examples": 50}),
            REPLY_KEY: replies[2].content[REPLY_KEY],
        }
    )
    new, _ = s.aggregate_train(
        1, [replies[0], replies[1], Message(forged, reply_to=train_message(arrays, 1, 3))]
    )
    done = s.rounds[-1]
    assert done.counted == ("Org1MSP/trainer", "Org2MSP/trainer"), done
    assert set(ledger.posts[1]["Org1MSP"].scores) == set(KEYS)  # org3's committed bytes, from its store
    assert "Org3MSP/trainer" in done.not_counted and "re-encode" in done.not_counted["Org3MSP/trainer"]
    assert done.received["Org1MSP/trainer"] == ledger.commits[1]["Org1MSP/trainer"].digest
    assert new is not None and done.posted == ledger.posts[1]["Org1MSP"].digest
    assert fixedpoint.digest(fixedpoint.encode(new.to_numpy_ndarrays())) == done.posted


def verify(ledger: FakeLedger, store: FakeStore, key: str, rounds: int) -> Verifier:
    v = Verifier(links(ledger, store, key), TASK, log=lambda _: None, patience=20)
    v.run(rounds)
    return v


class Liar(AccountableStrategy):
    def publish(self, post: RoundPost) -> RoundPost:
        bent = [g + 12345 for g in post.new_global]
        return dataclasses.replace(post, new_global=bent, digest=fixedpoint.digest(bent))


def test_a_lying_server_is_outvoted_by_the_verifiers_and_its_model_refused(
    world: tuple[FakeLedger, FakeStore],
) -> None:
    ledger, store = world
    arrays = start_arrays(store)
    s = server(ledger, store, Liar)
    s.configure_train(1, arrays, ConfigRecord(), None)  # type: ignore[arg-type]
    replies = clients_train(ledger, store, arrays, 1)
    threads = [
        threading.Thread(target=verify, args=(ledger, store, k, 1))
        for k in ("Org2MSP/admin", "Org3MSP/admin")
    ]
    for t in threads:
        t.start()
    lie, _ = s.aggregate_train(1, replies)
    for t in threads:
        t.join(60)
    honest = ledger.results[1].aggregate_digest
    assert ledger.results[1].disagreeing == ("Org1MSP",) and s.rounds[-1].posted != honest
    assert s.rounds[-1].agreed == honest
    assert lie is not None
    refused = clients_train(ledger, store, lie, 2)
    assert all(r.has_error() and "refuses to train round 2" in (r.error.reason or "") for r in refused)
    assert 2 not in ledger.commits


def test_honest_rounds_agree_and_the_next_round_trains_from_the_agreed_model(
    world: tuple[FakeLedger, FakeStore],
) -> None:
    ledger, store = world
    arrays = start_arrays(store)
    s = server(ledger, store)
    for r in (1, 2):
        s.configure_train(r, arrays, ConfigRecord(), None)  # type: ignore[arg-type]
        replies = clients_train(ledger, store, arrays, r)
        assert not any(m.has_error() for m in replies)
        threads = [
            threading.Thread(target=verify, args=(ledger, store, k, r))
            for k in ("Org2MSP/admin", "Org3MSP/admin")
        ]
        for t in threads:
            t.start()
        new, _ = s.aggregate_train(r, replies)
        for t in threads:
            t.join(60)
        assert new is not None and ledger.results[r].agreeing == ("Org1MSP", "Org2MSP", "Org3MSP")
        assert s.rounds[-1].posted == ledger.results[r].aggregate_digest
        arrays = new
    checker = Verifier(
        links(ledger, store, "Org1MSP/admin"), TASK, post=False, log=lambda _: None, patience=20
    )
    verdicts = checker.run(
        2
    )  # a restarted verifier recomputes every round and finds the server's posts right
    assert [(v.computed == v.agreed, v.own_post_matches) for v in verdicts] == [(True, True), (True, True)]


def test_settings_name_what_is_missing() -> None:
    with pytest.raises(ValueError, match="fabricml-task"):
        Settings.of({})
