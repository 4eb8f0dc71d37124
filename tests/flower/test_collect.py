"""Gathering a round's committed updates and finding a round's base, without a network:
bytes bound to someone else are flagged (not missing), an update no store serves is
missing only once the reveal window ran its full length, a round after a closed round
starts from the model before it."""

from __future__ import annotations

import dataclasses
import datetime

import numpy as np

from fabricml.contracts.federation import Commitment, Participant, RoundResult
from fabricml.flower.collect import gather
from fabricml.flower.rounds import Clock, agreed_base
from fabricml.flower.updates import binding, digest, update_bytes

from .fake_ledger import FakeLedger, FakeStore, task_of

KEYS = ["Org1MSP/trainer", "Org2MSP/trainer"]
SHAPES = [(2, 3), (3,)]


def commitment(key: str, raw: bytes) -> Commitment:
    msp, subject = key.split("/")
    who = Participant(msp_id=msp, subject=subject, slashed=False)
    return Commitment(participant=who, digest=digest(raw), samples=10, uri="u", tx_id="t")


def raw_for(key: str, value: int, bound_to: str = "") -> bytes:
    values = [np.full(s, value, dtype=np.int64) for s in SHAPES]
    return update_bytes(values, binding("t1", 1, bound_to or key))


class Frozen(Clock):
    def __init__(self, now: float) -> None:
        super().__init__(now=lambda: now, sleep=lambda _: None)


def test_bytes_bound_to_another_participant_are_flagged_and_an_unserved_update_is_missing() -> None:
    ledger = FakeLedger(task_of("t1", KEYS))
    stolen = raw_for(KEYS[1], 5, bound_to=KEYS[0])  # org2 commits a copy of bytes bound to org1
    lost = raw_for(KEYS[0], 7)
    store = FakeStore()
    store.put(stolen)  # the lost one is never published
    commitments = {KEYS[0]: commitment(KEYS[0], lost), KEYS[1]: commitment(KEYS[1], stolen)}
    state = ledger.state(1)  # reveal deadline 2000-01-01: passed for certain
    found = gather(ledger.task, state, commitments, SHAPES, store)
    assert found.missing == [KEYS[0]] and found.usable == 1
    assert KEYS[1] in found.invalid and "bound to" in found.invalid[KEYS[1]]
    assert not found.updates


def test_an_unserved_update_is_retried_while_the_reveal_window_runs() -> None:
    ledger = FakeLedger(task_of("t1", KEYS))
    late = raw_for(KEYS[0], 3)
    store = FakeStore()
    future = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)).isoformat()
    state = dataclasses.replace(ledger.state(1), reveal_deadline=future)
    tries: list[int] = []

    def publish_on_third_try(_: float) -> None:
        tries.append(1)
        if len(tries) == 2:
            store.put(late)

    clock = Clock(sleep=publish_on_third_try)
    found = gather(ledger.task, state, {KEYS[0]: commitment(KEYS[0], late)}, SHAPES, store, clock=clock)
    assert not found.missing and list(found.updates) == [KEYS[0]] and len(tries) == 2


def test_a_round_after_a_closed_round_starts_from_the_model_before_it() -> None:
    ledger = FakeLedger(task_of("t1", KEYS))
    closed = RoundResult(
        task_id="t1", round=2, status="CLOSED", reason="too few", aggregate_digest="", tx_id="s2"
    )
    final = RoundResult(
        task_id="t1", round=1, status="FINALIZED", reason="", aggregate_digest="a" * 64, tx_id="s1"
    )
    ledger.results.update({1: final, 2: closed})
    view = ledger.as_caller(KEYS[0])
    assert agreed_base(view, "t1", 3, "i" * 64, 1, Frozen(0)) == "a" * 64
    assert agreed_base(view, "t1", 1, "i" * 64, 1, Frozen(0)) == "i" * 64
