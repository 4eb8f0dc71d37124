"""A dishonest member gains nothing in the registry (issue 13, findings 8 and 9), on the real network."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fabricml.contracts.registry import RegistrationRequest
from fabricml.gateway import GatewayError, RefusalCode, is_refusal, sync
from fabricml.gateway.profile import ConnectionProfile
from fabricml.network.network import Network
from fabricml.registry.service import ModelRegistration, opened_confidential
from tests.registry.conftest import RegistryFactory, unique

ContractOn = Callable[[str, str, str], sync.Contract]
OWNER = ["Org1MSP"]  # writes of the owner's private data: its peers alone endorse them


@pytest.fixture
def contract_on(network: Network) -> Iterator[ContractOn]:
    """contract_on(peer_org, caller_org, identity) -> the Registry contract for caller_org's
    identity through peer_org's Gateway (a member may evaluate on any peer it reaches)."""
    channels: list[sync.Channel] = []

    def make(peer_org: str, caller_org: str, identity: str) -> sync.Contract:
        peer = ConnectionProfile.load(network.layout.profile(network.topology.org(peer_org)))
        who = ConnectionProfile.load(network.layout.profile(network.topology.org(caller_org)))
        ident, signer, hash_ = who.identity(identity)
        channels.append(peer.peer().sync_channel())
        gateway = sync.connect(channels[-1], ident, signer, hash_)
        return gateway.get_network(network.topology.channel).get_contract(
            network.topology.chaincode_name, "Registry"
        )

    yield make
    for channel in channels:
        channel.close()


def refused(code: RefusalCode, call: Callable[..., object], *args: object, **kwargs: object) -> GatewayError:
    """Runs call, which must be refused with code."""
    with pytest.raises(GatewayError) as err:
        call(*args, **kwargs)
    assert is_refusal(err.value, code), (code, str(err.value))
    return err.value


def _register(
    registry: RegistryFactory, model_dir: Path, orgs: list[str], confidential: dict[str, str] | None = None
) -> str:
    name = unique()
    registry("org1").register(model_dir, ModelRegistration(name, "1", orgs, confidential=confidential))
    return f"{name}@1"


def test_one_org_alone_cannot_revoke_an_approved_model(registry: RegistryFactory, model_dir: Path) -> None:
    ref = _register(registry, model_dir, ["Org1MSP"])
    for org in ("org1", "org2"):
        registry(org, "admin").approve(ref)
    # The attack: org3's admin alone withdraws org1's model, for every org.
    voted = registry("org3", "admin").revoke(ref, "I say so")
    assert voted.status == "approved" and [v.msp_id for v in voted.revocation_votes] == ["Org3MSP"]
    assert registry("org1", "auditor").deployable(ref).deployable is True
    assert registry("org3", "admin").revoke(ref, "again") == voted  # one vote per org
    revoked = registry("org2", "admin").revoke(ref, "bias confirmed by our audit")
    assert revoked.status == "revoked" and revoked.revocation and revoked.revocation.msp_id == "Org2MSP"
    assert registry("org1", "auditor").deployable(ref).deployable is False


def test_a_named_training_org_confirms_before_approval(registry: RegistryFactory, model_dir: Path) -> None:
    ref = _register(registry, model_dir, ["Org1MSP", "Org2MSP"])
    record = registry("org3", "auditor").get(ref)
    assert record.pending_confirmations == ("Org2MSP",)
    # The attack: org1 names org2 as a trainer, without org2 knowing, and gets it approved.
    refused(RefusalCode.WRONG_PHASE, registry("org1", "admin").approve, ref)
    refused(RefusalCode.WRONG_PHASE, registry("org3", "admin").approve, ref)
    for org, identity in (("org3", "trainer"), ("org2", "user1")):
        refused(RefusalCode.FORBIDDEN, registry(org, identity).confirm_training, ref)
    assert registry("org3", "auditor").get(ref) == record
    confirmed = registry("org2", "trainer").confirm_training(ref)
    assert confirmed.pending_confirmations == () and confirmed.confirmations[0].msp_id == "Org2MSP"
    registry("org1", "admin").approve(ref)
    assert registry("org2", "admin").approve(ref).status == "approved"


def test_confidential_provenance_is_read_by_its_owner_and_whom_it_grants(
    registry: RegistryFactory, contract_on: ContractOn, model_dir: Path
) -> None:
    secret = {"dataset": "claims from the oncology ward"}
    ref = _register(registry, model_dir, ["Org1MSP"], confidential=secret)

    def read(org: str, identity: str) -> object:
        raw = contract_on("org1", org, identity).evaluate_transaction("GetConfidential", ref)
        return opened_confidential(json.loads(raw))

    # The attack from the review: org2's user1, with no role, evaluates on org1's peer.
    for org, identity in (("org2", "user1"), ("org2", "auditor"), ("org3", "admin"), ("org1", "user1")):
        assert "oncology" not in str(refused(RefusalCode.FORBIDDEN, read, org, identity))
    assert read("org1", "auditor") == secret

    def grant(admin_org: str, grantee: str, function: str = "GrantConfidential") -> object:
        admin = contract_on("org1", admin_org, "admin")
        return admin.submit_transaction(function, ref, grantee, endorsing_organizations=OWNER)

    for bad in ("Org1MSP", "Org9MSP"):
        refused(RefusalCode.INVALID, grant, "org1", bad)
    refused(RefusalCode.FORBIDDEN, grant, "org2", "Org2MSP")
    grant("org1", "Org2MSP")
    assert read("org2", "auditor") == secret
    for org, identity in (("org2", "user1"), ("org3", "auditor")):
        refused(RefusalCode.FORBIDDEN, read, org, identity)
    grant("org1", "Org2MSP", "WithdrawConfidentialGrant")
    refused(RefusalCode.FORBIDDEN, read, "org2", "auditor")
    # Neither the secret nor the grants reached public state.
    history = [e.to_json() for e in registry("org3", "auditor").history(ref)]
    assert "oncology" not in json.dumps(history)


def _create_task(network: Network, initial: str) -> str:
    task = f"task-{uuid.uuid4().hex[:6]}"
    request = {"id": task, "initialModel": initial, "rounds": 1, "minParticipants": 2, "stake": 0,
               "rewardPerRound": 0, "commitSeconds": 60, "revealSeconds": 60, "aggregateSeconds": 60,
               "rule": "fedavg"}  # fmt: skip
    profile = ConnectionProfile.load(network.layout.profile(network.topology.org("org1")))
    ident, signer, hash_ = profile.identity("admin")
    with profile.peer().sync_channel() as channel:
        fed = (
            sync.connect(channel, ident, signer, hash_)
            .get_network(network.topology.channel)
            .get_contract(network.topology.chaincode_name, "Federation")
        )
        fed.submit_transaction("CreateTask", json.dumps(request))
    return task


def test_nobody_pre_registers_a_round_model(
    network: Network, registry: RegistryFactory, model_dir: Path
) -> None:
    initial = _register(registry, model_dir, ["Org1MSP"])
    task = _create_task(network, initial)
    reg = registry("org1")
    base = reg.get(initial)
    kept = ("manifestDigest", "weights", "datasets", "code", "storageUris", "metrics")
    squat = {k: base.to_json()[k] for k in kept} | {
        "name": f"fed-{task}", "version": "r1", "parents": [initial], "trainingOrgs": ["Org1MSP"],
        "round": f"{task}/1", "aggregateDigest": "ab" * 32,
    }  # fmt: skip

    # The attack: a trainer registers fed-<task>@r1 with weights of its choice before the
    # round ended, so that the honest registrar would be refused.
    def register(request: dict[str, object]) -> object:
        return reg.ledger.register(RegistrationRequest.from_json(request))

    refused(RefusalCode.NOT_FOUND, register, squat)  # round 1 has not ended
    refused(RefusalCode.FORBIDDEN, register, {**squat, "round": "", "aggregateDigest": ""})
    refused(RefusalCode.INVALID, register, {**squat, "name": unique("elsewhere")})
    refused(RefusalCode.NOT_FOUND, registry("org2", "auditor").get, f"fed-{task}@r1")
