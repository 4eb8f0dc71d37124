"""One of four participants attacks; the robust rule, the evidence and the ledger answer.

All tasks (a clean one and one per attack) run side by side on the real network, with
the same data split, model, seeds and rounds; participant 4 (org3's trainer, the only
participant of its org) is the attacker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import torch

from fabricml.demo.admins import OrgAdmins, ensure_tokens
from fabricml.demo.task import DemoOptions
from fabricml.network.network import Network
from tests.federation.harness import (
    TaskRun,
    begin_when_joined,
    describe,
    finish,
    prepare,
    rewards,
    slashed,
    start,
)

MEMBERS = [("org1", "trainer"), ("org1", "trainer2"), ("org2", "trainer"), ("org3", "trainer")]
ATTACKER = 3
ATTACKS: dict[str, dict[str, object]] = {
    "sign_flip": {"attack": "sign_flip"},
    "scaling": {"attack": "scaling"},
    "noise": {"attack": "noise"},
    "label_flip": {"attack": "label_flip"},
    "free_rider": {"attack": "free_rider"},
    "never_reveals": {"attack": "never_reveals"},
    "misbound": {"attack": "misbound"},  # reveals bytes bound to another participant
    "wrong_aggregate": {"wrong_aggregate": True},
}


def _options(name: str) -> DemoOptions:
    return DemoOptions(
        dataset="digits", rounds=4, rule="median", epochs=5, lr=0.1, seed=3, stake=100, reward_per_round=40,
        phase_seconds=240, reveal_seconds=25, task=f"adv-{name}-{uuid.uuid4().hex[:4]}", serve=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def runs(network: Network) -> Iterator[dict[str, TaskRun]]:
    torch.set_num_threads(1)
    out = {
        name: TaskRun(_options(name), MEMBERS, {ATTACKER: b}) for name, b in [("clean", {}), *ATTACKS.items()]
    }
    with OrgAdmins.open(network) as c:
        # Every task stakes and escrows at once: enough tokens for all of them first (an
        # upper bound per org: every participant's stake and every round's reward, per task).
        per_task = [r.opt.stake * len(MEMBERS) + r.opt.reward_per_round * r.opt.rounds for r in out.values()]
        ensure_tokens(c, sum(per_task), log=lambda _: None)
        for run in out.values():
            prepare(c, run)
        for run in out.values():
            start(run)
        try:
            begin_when_joined(c, list(out.values()))
            for run in out.values():
                finish(c, run)
        finally:
            for run in out.values():
                for a in run.agents:
                    a.opt.stop.set()
            for run in out.values():
                for t in run.threads:
                    t.join(30)
                run.connections.close()
        yield out


def test_the_clean_run_finalizes_every_round_and_slashes_no_one(runs: dict[str, TaskRun]) -> None:
    clean = runs["clean"]
    assert [r["status"] for r in clean.rounds] == ["FINALIZED"] * 4, describe(clean)
    assert not slashed(clean), describe(clean)
    assert clean.curve[-1]["testAccuracy"] > 0.85, describe(clean)
    for name, run in runs.items():  # the figures, for whoever reads the test log (pytest -s)
        caught = sorted({(k, r["round"]) for r in run.rounds for k in r["slashed"]})
        print(f"{name:16} final accuracy {run.curve[-1]['testAccuracy']:.3f}  slashed {caught}")


@pytest.mark.parametrize("attack", [a for a in ATTACKS if a != "wrong_aggregate"])
def test_an_attacker_is_flagged_and_slashed_and_accuracy_holds(runs: dict[str, TaskRun], attack: str) -> None:
    run, clean = runs[attack], runs["clean"]
    attacker = run.key(ATTACKER)
    honest = {run.key(i) for i in range(len(MEMBERS))} - {attacker}
    assert slashed(run) == {attacker}, f"{attack}: slashed {slashed(run)}\n{describe(run)}"
    assert not honest & slashed(run)
    final, reference = run.curve[-1]["testAccuracy"], clean.curve[-1]["testAccuracy"]
    assert final >= reference - 0.02, (
        f"{attack}: accuracy {final:.3f} vs clean {reference:.3f}\n{describe(run)}"
    )
    # Slashed means out: no reward from the round it was caught, and a net loss overall.
    caught = next(r["round"] for r in run.rounds if attacker in r["slashed"])
    assert all(attacker not in r["rewards"] for r in run.rounds if r["round"] >= caught)
    assert rewards(run, attacker) < run.opt.stake, f"{attack}: the attacker gained {rewards(run, attacker)}"
    if attack == "free_rider":
        assert caught == 2, "the replay in round 2 must be caught in round 2"
    if attack == "misbound":
        assert caught == 1, "bytes bound to someone else are refused in the round they appear"


def test_a_wrong_aggregate_digest_is_outvoted_and_recorded(runs: dict[str, TaskRun]) -> None:
    run = runs["wrong_aggregate"]
    liar = run.key(ATTACKER).split("/")[0]
    assert [r["status"] for r in run.rounds] == ["FINALIZED"] * 4, describe(run)
    for r in run.rounds:
        assert r["disagreeing"] == [liar] and liar not in r["agreeing"], describe(run)
    assert not slashed(run), "posting a wrong digest is recorded, not slashed, and no participant suffers"
    assert abs(run.curve[-1]["testAccuracy"] - runs["clean"].curve[-1]["testAccuracy"]) <= 0.02
