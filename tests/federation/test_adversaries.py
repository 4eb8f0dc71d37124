"""Attackers on the real network (protocol v2), every task side by side with the same
data split, model, seeds and rounds as its clean twin.

- One of four participants attacks (org3's trainer, the only participant of its org).
  Provable misbehaviour (an update bound to someone else, a replay, withholding the bytes)
  is flagged and costs the stake; statistical attacks (sign flip, scaling, noise, label
  flip) cost weight and reward, never stake, and the default rule keeps the accuracy.
- Issue 15: eight participants, several identities per org (maxPerOrg 3), of which two
  collude with ALIE (org3, a dishonest org) and two with IPM (one identity in each of
  org1 and org2), on non-IID data: every round finalizes, the accuracy stays within 5
  points of the clean twin, no honest participant is slashed.
- Tokens are conserved once every task ended: balances + escrow == supply."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import torch

from fabricml.demo.admins import OrgAdmins, ensure_tokens
from fabricml.demo.task import DemoOptions
from fabricml.federation.collusion import CoalitionLink
from fabricml.federation.rulebook import DEFAULT_RULE
from fabricml.network.network import Network
from tests.federation.conservation import assert_tokens_conserved, holdings
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

ROUNDS = 4
EIGHT_ROUNDS = 10
MEMBERS = [("org1", "trainer"), ("org1", "trainer2"), ("org2", "trainer"), ("org3", "trainer")]
ATTACKER = 3
PROVABLE: dict[str, dict[str, Any]] = {
    "free_rider": {"attack": "free_rider"},  # replays its round-1 update in round 2
    "never_reveals": {"attack": "never_reveals"},  # commits, never publishes the bytes
    "misbound": {"attack": "misbound"},  # publishes bytes bound to another participant
}
STATISTICAL: dict[str, dict[str, Any]] = {
    "sign_flip": {"attack": "sign_flip"},
    "scaling": {"attack": "scaling"},
    "noise": {"attack": "noise"},
    "label_flip": {"attack": "label_flip"},
}
PER_ORG = (("org1", 3), ("org2", 3), ("org3", 2))
EIGHT = [(org, "trainer" if i == 0 else f"trainer{i + 1}") for org, n in PER_ORG for i in range(n)]
ALIE, IPM = (6, 7), (2, 5)  # org3's two identities; org1/trainer3 and org2/trainer3


def _options(name: str, **changes: Any) -> DemoOptions:
    opt = DemoOptions(
        dataset="digits", rounds=ROUNDS, rule=DEFAULT_RULE, epochs=5, lr=0.1, seed=3, stake=100,
        reward_per_round=40, phase_seconds=300, reveal_seconds=25, task=f"adv-{name}-{uuid.uuid4().hex[:4]}",
        serve=False,
    )  # fmt: skip
    for k, v in changes.items():
        setattr(opt, k, v)
    return opt


def _collusion(c: OrgAdmins) -> dict[int, dict[str, Any]]:
    keys = [f"{c.msp(org)}/{identity}" for org, identity in EIGHT]
    alie = CoalitionLink("alie", [keys[i] for i in ALIE], len(EIGHT))
    ipm = CoalitionLink("ipm:0.5", [keys[i] for i in IPM], len(EIGHT))
    return {**{i: {"coalition": alie} for i in ALIE}, **{i: {"coalition": ipm} for i in IPM}}


def _runs(c: OrgAdmins) -> dict[str, TaskRun]:
    out = {"clean": TaskRun(_options("clean"), MEMBERS, {})}
    for name, b in {**PROVABLE, **STATISTICAL, "wrong_aggregate": {"wrong_aggregate": True}}.items():
        out[name] = TaskRun(_options(name), MEMBERS, {ATTACKER: b})
    # Ten rounds: round one has no reference direction, so the near-parallel IPM pair steers it;
    # the screen leaves them out from round three on and the task recovers (in-process, bit for
    # bit with the network: 0.880 vs the clean twin's 0.906 after round 10; 0.232 vs 0.746 after 4).
    non_iid = {"split": "dirichlet", "alpha": 0.5, "epochs": 3, "rounds": EIGHT_ROUNDS}
    out["eight-clean"] = TaskRun(_options("eight-clean", **non_iid), EIGHT, {})
    out["eight-colluding"] = TaskRun(_options("eight-colluding", **non_iid), EIGHT, _collusion(c))
    return out


@pytest.fixture(scope="module")
def runs(network: Network) -> Iterator[Runs]:
    torch.set_num_threads(1)
    failed: dict[str, BaseException] = {}
    with OrgAdmins.open(network) as c:
        out = _runs(c)
        # Every task stakes and escrows at once: enough tokens for all of them first (an
        # upper bound per org: every participant's stake and every round's reward, per task).
        per_task = [
            r.opt.stake * len(r.members) + r.opt.reward_per_round * r.opt.rounds for r in out.values()
        ]
        ensure_tokens(c, sum(per_task), log=lambda _: None)
        for run in out.values():
            prepare(c, run)
        for run in out.values():
            start(run)
        try:
            begin_when_joined(c, list(out.values()))
            for name, run in out.items():
                try:
                    finish(c, run, timeout=1800)
                except (AssertionError, TimeoutError) as exc:  # reported by the test of that task
                    failed[name] = exc
        finally:
            for run in out.values():
                for a in run.agents:
                    a.opt.stop.set()
            for run in out.values():
                for t in run.threads:
                    t.join(30)
                run.connections.close()
        held = holdings(c)
        assert_tokens_conserved(c)
        yield Runs(out, held, failed)


@dataclass
class Runs:
    tasks: dict[str, TaskRun]
    held: dict[str, int]  # supply, balances, escrow once every task ended
    failed: dict[str, BaseException]  # task name -> why it did not run to its end

    def __getitem__(self, name: str) -> TaskRun:
        if name in self.failed:
            raise AssertionError(f"task {name} did not run to its end: {self.failed[name]}") from self.failed[
                name
            ]
        return self.tasks[name]


def _figures(runs: dict[str, TaskRun]) -> None:
    for name, run in runs.items():  # for whoever reads the test log (pytest -s)
        caught = sorted({(k, r["round"]) for r in run.rounds for k in r["slashed"]})
        print(f"{name:16} final accuracy {run.curve[-1]['testAccuracy']:.3f}  slashed {caught}")


def test_the_clean_run_finalizes_every_round_and_slashes_no_one(
    runs: Runs,
) -> None:
    out, held = runs, runs.held
    _figures({k: v for k, v in runs.tasks.items() if k not in runs.failed})
    clean = out["clean"]
    assert [r["status"] for r in clean.rounds] == ["FINALIZED"] * ROUNDS, describe(clean)
    assert not slashed(clean), describe(clean)
    assert clean.curve[-1]["testAccuracy"] > 0.85, describe(clean)
    assert held["balances"] + held["escrow"] == held["supply"], held
    for name in set(runs.tasks) - set(runs.failed):  # those that ended hold nothing in escrow
        assert out[name].task["status"] == "done" and out[name].task["escrow"] == 0, out[name].task


@pytest.mark.parametrize("attack", list(PROVABLE))
def test_provable_misbehaviour_is_flagged_and_costs_the_stake(runs: Runs, attack: str) -> None:
    out = runs
    run, clean = out[attack], out["clean"]
    attacker = run.key(ATTACKER)
    assert slashed(run) == {attacker}, f"{attack}: slashed {slashed(run)}\n{describe(run)}"
    final, reference = run.curve[-1]["testAccuracy"], clean.curve[-1]["testAccuracy"]
    assert final >= reference - 0.03, f"{attack}: {final:.3f} vs clean {reference:.3f}\n{describe(run)}"
    caught = next(r["round"] for r in run.rounds if attacker in r["slashed"])
    assert caught == (2 if attack == "free_rider" else 1), describe(run)  # a replay comes in round 2
    # Slashed means out: no reward from the round it was caught, and its whole stake lost.
    assert all(attacker not in r["rewards"] for r in run.rounds if r["round"] >= caught)
    assert rewards(run, attacker) < run.opt.stake, f"{attack}: the attacker gained {rewards(run, attacker)}"
    if attack == "never_reveals":  # missing, reported only after the full reveal window
        assert attacker in run.rounds[0]["missing"], describe(run)


@pytest.mark.parametrize("attack", list(STATISTICAL))
def test_a_statistical_attacker_loses_weight_not_stake_and_accuracy_holds(runs: Runs, attack: str) -> None:
    out = runs
    run, clean = out[attack], out["clean"]
    attacker = run.key(ATTACKER)
    honest = {run.key(i) for i in range(len(MEMBERS))} - {attacker}
    assert not honest & slashed(run), f"{attack}: slashed {slashed(run)}\n{describe(run)}"
    assert [r["status"] for r in run.rounds] == ["FINALIZED"] * ROUNDS, describe(run)
    final, reference = run.curve[-1]["testAccuracy"], clean.curve[-1]["testAccuracy"]
    assert final >= reference - 0.03, f"{attack}: {final:.3f} vs clean {reference:.3f}\n{describe(run)}"
    # It earns no more than the honest participant of the other single-participant org.
    assert rewards(run, attacker) <= rewards(run, run.key(2)), describe(run)


def test_a_wrong_aggregate_digest_is_outvoted_and_recorded(
    runs: Runs,
) -> None:
    out = runs
    run = out["wrong_aggregate"]
    liar = run.key(ATTACKER).split("/")[0]
    assert [r["status"] for r in run.rounds] == ["FINALIZED"] * ROUNDS, describe(run)
    for r in run.rounds:
        assert r["disagreeing"] == [liar] and liar not in r["agreeing"], describe(run)
    assert not slashed(run), "posting a wrong digest is recorded, not slashed, and no participant suffers"
    assert abs(run.curve[-1]["testAccuracy"] - out["clean"].curve[-1]["testAccuracy"]) <= 0.03


def test_colluding_alie_and_ipm_attackers_among_eight_do_not_derail_the_task(
    runs: Runs,
) -> None:
    out = runs
    run, clean = out["eight-colluding"], out["eight-clean"]
    assert run.task["maxPerOrg"] == 3 and len(run.task["participants"]) == 8, run.task
    assert [r["status"] for r in run.rounds] == ["FINALIZED"] * EIGHT_ROUNDS, describe(run)
    assert [r["status"] for r in clean.rounds] == ["FINALIZED"] * EIGHT_ROUNDS, describe(clean)
    colluders = {run.key(i) for i in (*ALIE, *IPM)}
    honest = {run.key(i) for i in range(len(EIGHT))} - colluders
    assert not honest & slashed(run), f"honest slashed: {honest & slashed(run)}\n{describe(run)}"
    assert not slashed(clean), describe(clean)
    final, reference = run.curve[-1]["testAccuracy"], clean.curve[-1]["testAccuracy"]
    assert final >= reference - 0.05, f"accuracy {final:.3f} vs clean twin {reference:.3f}\n{describe(run)}"
