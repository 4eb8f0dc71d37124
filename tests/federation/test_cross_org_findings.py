"""Issue 13's Federation findings that cross orgs, on the real network, each as the attack
first and then the state it must leave: a sybil org's identities past maxPerOrg, an
org cutting the reveal window short with a lying clock to get another org's participant
slashed, a withholder that loses its stake only after the full window, and a task that
cannot go on, closed by another org with the honest stakes refunded. Tokens are
conserved after each (balances + escrow == supply).

Other orgs' findings on the real network live beside the contracts they concern:
tests/attest/test_claim_attacks.py (k=1 claims, another org's payout, receipts outside
their batch), tests/registry/test_registry_governance.py (revocation by majority, another
org's confidential provenance, pre-registered fed-<task>@r<n>), and
tests/federation/test_federation_protocol_v2.py (a lying Settle, a replayed commitment)."""

from __future__ import annotations

import datetime
import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fabricml.contracts import FederationClient, TokenClient
from fabricml.contracts.federation import TaskRequest
from fabricml.demo.admins import OrgAdmins, ensure_tokens, ensure_trainer
from fabricml.gateway import GatewayError, RefusalCode, is_refusal
from fabricml.network.network import Network
from fabricml.registry.connect import open_registry
from fabricml.registry.service import ModelRegistration
from tests.conftest import fabricml, network_options
from tests.federation.clock import proposals_ahead
from tests.federation.conservation import assert_tokens_conserved
from tests.federation.settling import settle_once_seen

ORGS = ("org1", "org2", "org3")
SKEW = 2  # clockSkewSeconds of these tasks: "passed for certain" is 2 x SKEW past a deadline


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _refused(code: RefusalCode, call: object) -> GatewayError:
    assert callable(call)
    with pytest.raises(GatewayError) as err:
        call()
    assert is_refusal(err.value, code), err.value
    return err.value


def _wait_past(deadline: str) -> None:
    when = datetime.datetime.fromisoformat(deadline.replace("Z", "+00:00"))
    left = (when - datetime.datetime.now(datetime.UTC)).total_seconds() + 2 * SKEW + 1
    time.sleep(max(0.0, left))


@pytest.fixture(scope="module")
def admins(network: Network, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OrgAdmins, str]]:
    with OrgAdmins.open(network) as c:
        ensure_tokens(c, 1000, log=lambda _: None)
        ensure_trainer(c, "org1", "trainer2")
        model = tmp_path_factory.mktemp("base")
        (model / "weights.bin").write_bytes(b"initial global model")
        base = f"xorg-{uuid.uuid4().hex[:6]}"
        with open_registry(c.profile("org1"), "trainer") as reg:
            reg.register(Path(model), ModelRegistration(base, "0", ["Org1MSP"]))
        yield c, f"{base}@0"


def _task(c: OrgAdmins, initial: str, min_participants: int = 2, commit_seconds: int = 600) -> str:
    task_id = f"xorg-{uuid.uuid4().hex[:6]}"
    request = TaskRequest(id=task_id, initial_model=initial, rounds=2, min_participants=min_participants,
                          max_per_org=1, stake=100, reward_per_round=30, commit_seconds=commit_seconds,
                          reveal_seconds=8, aggregate_seconds=600, clock_skew_seconds=SKEW,
                          rule="median")  # fmt: skip
    c.client("org1", "admin", FederationClient).create_task(request)
    return task_id


def _balances(c: OrgAdmins) -> dict[str, int]:
    token = c.client("org1", "auditor", TokenClient)
    return {o: token.get_balance(c.msp(o)).amount for o in ORGS}


def test_a_sybil_org_is_held_to_max_per_org_and_a_lying_clock_slashes_no_one_early(
    admins: tuple[OrgAdmins, str],
) -> None:
    c, initial = admins
    task_id = _task(c, initial)
    fed = {o: c.client(o, "trainer", FederationClient) for o in ORGS}
    fed["org1"].join(task_id)
    # Finding 3: org1's second identity would give it two of the task's votes and shares.
    _refused(RefusalCode.EXHAUSTED, lambda: c.client("org1", "trainer2", FederationClient).join(task_id))
    for o in ("org2", "org3"):
        fed[o].join(task_id)
    task = c.client("org1", "auditor", FederationClient).get_task(task_id)
    assert [p.key for p in task.participants] == [f"{c.msp(o)}/trainer" for o in ORGS]
    before = _balances(c)
    c.in_step()
    c.client("org2", "admin", FederationClient).start(task_id)
    for o in ORGS:
        update = _digest(f"{task_id} {o} round 1")
        fed[o].commit(task_id, 1, update, 50, f"https://127.0.0.1/{o}/{update}")
    c.in_step()
    auditor = c.client("org3", "auditor", FederationClient)
    state = auditor.get_round_state(task_id, 1)
    assert state.commits_closed and state.phase == "AGGREGATE", state
    org3 = f"{c.msp('org3')}/trainer"
    scores = {f"{c.msp(o)}/trainer": 500 for o in ("org1", "org2")}
    aggregate = _digest(f"{task_id} aggregate 1")
    org1_admin = c.client("org1", "admin", FederationClient)

    # Finding 2/5: org1 reports org3's update missing while its reveal window is open...
    def report_org3_missing() -> object:
        return org1_admin.post_aggregate(task_id, 1, aggregate, scores, [], [org3])

    _refused(RefusalCode.WRONG_PHASE, report_org3_missing)
    # ...and again with a proposal timestamp past the window: the endorsers' clocks refuse it.
    with proposals_ahead(120):
        _refused(RefusalCode.INVALID, report_org3_missing)
        _refused(RefusalCode.INVALID, lambda: fed["org1"].settle(task_id, 1))
    state = auditor.get_round_state(task_id, 1)
    assert state.posted == () and not state.agreed_digest and not state.settleable, state
    assert all(p.stake == 100 and not p.out for p in auditor.get_task(task_id).participants)

    # Once the full window ran (for certain), org3 withheld: a quorum reports it missing.
    _wait_past(state.reveal_deadline)
    for o in ("org1", "org2"):
        c.client(o, "admin", FederationClient).post_aggregate(task_id, 1, aggregate, scores, [], [org3])
    result = settle_once_seen(c.client("org3", "auditor", FederationClient), task_id, 1)
    c.in_step()
    assert result.status == "FINALIZED" and result.slashed == (org3,) and result.missing == (org3,), result
    assert set(result.rewards) == set(scores) and org3 not in result.rewards, result
    after = _balances(c)
    assert after["org3"] == before["org3"], "org3's stake stays in the task's escrow, lost to it"
    out = next(p for p in auditor.get_task(task_id).participants if p.key == org3)
    assert out.out == "slashed" and out.out_round == 1 and out.stake == 0, out
    assert_tokens_conserved(c)


def test_a_task_that_cannot_go_on_is_closed_by_another_org_with_honest_stakes_refunded(
    admins: tuple[OrgAdmins, str],
) -> None:
    c, initial = admins
    task_id = _task(c, initial, min_participants=3, commit_seconds=8)
    fed = {o: c.client(o, "trainer", FederationClient) for o in ORGS}
    before = _balances(c)
    for o in ORGS:
        fed[o].join(task_id)
    c.in_step()
    c.client("org1", "admin", FederationClient).start(task_id)
    for o in ("org1", "org2"):  # org3 never commits: the round cannot reach three
        update = _digest(f"{task_id} {o} round 1")
        fed[o].commit(task_id, 1, update, 50, f"https://127.0.0.1/{o}/{update}")
    closer = c.client("org3", "auditor", FederationClient)
    _refused(RefusalCode.WRONG_PHASE, lambda: closer.close(task_id))  # its commit phase still runs
    state = closer.get_round_state(task_id, 1)
    _wait_past(state.commit_deadline)
    ended = closer.close(task_id)
    c.in_step()
    assert ended.done and ended.escrow == 0, ended
    task = closer.get_task(task_id)
    assert task.status in ("done", "closed") and task.escrow == 0, task
    after = _balances(c)
    gained = {o: after[o] - before[o] for o in ORGS}
    # Stakes back; the creator's unpaid rewards (2 rounds x 30) back; the org that never
    # committed pays the committers its penalty, equally.
    assert gained["org1"] - 60 == gained["org2"] > 0 and gained["org3"] == -2 * gained["org2"], gained
    _refused(RefusalCode.ALREADY_DONE, lambda: closer.close(task_id))
    # The same through the CLI, as an operator sees it.
    where = network_options(c.net)
    shown = json.loads(fabricml("fed", "status", task_id, "--org", "org2", "--json", *where).stdout)
    assert shown["task"]["escrow"] == 0 and [r["status"] for r in shown["rounds"]] == ["CLOSED"], shown
    again = fabricml("fed", "close", task_id, "--org", "org3", *where, check=False)
    assert again.returncode == 1 and "ALREADY_DONE" in again.stderr + again.stdout, again
    assert_tokens_conserved(c)
