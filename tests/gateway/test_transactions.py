"""Transactions, endorsing organizations, errors and offline signing against the real network."""

from __future__ import annotations

import hashlib
import uuid

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from fabricml.gateway import (
    CommitError,
    EndorseError,
    EvaluateError,
    GatewayError,
    Identity,
    ecdsa_signer,
    sha256,
    sync,
)
from fabricml.gateway._client import UnsignedError
from fabricml.network.network import Network
from tests.certs import issue
from tests.gateway.conftest import GatewayFactory, contract


def _key() -> str:
    return f"k-{uuid.uuid4().hex[:12]}"


def test_submit_returns_the_result_and_updates_the_ledger(network: Network, gateway: GatewayFactory) -> None:
    c = contract(gateway(), network)
    k = _key()
    assert c.submit_transaction("Put", k, "value-1") == b"value-1"
    assert c.evaluate_transaction("Get", k) == b"value-1"


def test_evaluate_returns_a_result_without_updating_the_ledger(
    network: Network, gateway: GatewayFactory
) -> None:
    c = contract(gateway(), network)
    k = _key()
    assert c.evaluate_transaction("Put", k, "not stored") == b"not stored"
    with pytest.raises(EvaluateError, match=f'no value for key \\\\"{k}\\\\"|no value for key'):
        c.evaluate_transaction("Get", k)


def test_evaluate_can_read_transient_data(network: Network, gateway: GatewayFactory) -> None:
    c = contract(gateway(), network)
    assert c.evaluate_transaction("EchoTransient", "pin", transient={"pin": b"1234"}) == b"1234"


def test_bytes_arguments_round_trip(network: Network, gateway: GatewayFactory) -> None:
    c = contract(gateway(), network)
    k = _key()
    c.submit_transaction("Put", k.encode(), "bytes ✓".encode())
    assert c.evaluate_transaction("Get", k).decode() == "bytes ✓"


def test_transient_data_reaches_the_chaincode_and_not_the_ledger(
    network: Network, gateway: GatewayFactory
) -> None:
    gw = gateway()
    c = contract(gw, network)
    secret = f"secret-{uuid.uuid4().hex}"
    result, commit = c.submit_async("HashTransient", "pin", transient={"pin": secret})
    assert result == hashlib.sha256(secret.encode()).hexdigest().encode()
    status = commit.status()
    assert status.successful
    events = gw.get_network(network.topology.channel).block_events(start_block=status.block_number)
    block = next(events)
    events.close()
    assert block.header.number == status.block_number
    assert secret.encode() not in block.SerializeToString()


def test_a_chaincode_error_is_an_endorse_error_with_per_peer_details(
    network: Network, gateway: GatewayFactory
) -> None:
    c = contract(gateway(), network)
    with pytest.raises(EndorseError) as err:
        c.submit_transaction("Fail", "the reason")
    e = err.value
    assert e.transaction_id and len(e.transaction_id) == 64
    assert e.details and all("the reason" in d.message for d in e.details)
    assert {d.msp_id for d in e.details} <= {"Org1MSP", "Org2MSP", "Org3MSP"}
    assert all(d.address.startswith("127.0.0.1:") for d in e.details)
    assert isinstance(e.__cause__, grpc.RpcError)


def test_wrong_argument_count_is_reported(network: Network, gateway: GatewayFactory) -> None:
    c = contract(gateway(), network)
    with pytest.raises(EvaluateError) as err:
        c.evaluate_transaction("Put", "only-one-argument")
    assert "params" in str(err.value).lower() or "argument" in str(err.value).lower()


def test_an_unknown_function_is_reported_by_name(network: Network, gateway: GatewayFactory) -> None:
    c = contract(gateway(), network)
    with pytest.raises(EndorseError, match="NoSuchFunction"):
        c.submit_transaction("NoSuchFunction")


def test_an_unknown_chaincode_is_reported(network: Network, gateway: GatewayFactory) -> None:
    gw = gateway()
    c = gw.get_network(network.topology.channel).get_contract("no-such-chaincode")
    with pytest.raises(GatewayError) as err:
        c.submit_transaction("Anything")
    assert "no-such-chaincode" in str(err.value)


def test_a_chaincode_panic_is_an_error_and_the_server_keeps_serving(
    network: Network, gateway: GatewayFactory
) -> None:
    c = contract(gateway(), network)
    with pytest.raises(EndorseError, match="chaincode panic: deliberate"):
        c.submit_transaction("Panic", "deliberate")
    k = _key()
    assert c.submit_transaction("Put", k, "after panic") == b"after panic"


def test_chosen_endorsing_organizations_are_the_only_endorsers(
    network: Network, gateway: GatewayFactory
) -> None:
    c = contract(gateway(), network)
    k = _key()
    # Org2's endorser refuses this call, so it only succeeds if Org2 is left out.
    result = c.submit_transaction("FailOnOrg", "Org2MSP", k, endorsing_organizations=["Org1MSP", "Org3MSP"])
    assert result == b"endorsed"


def test_an_org_failing_to_endorse_is_named_in_the_details(network: Network, gateway: GatewayFactory) -> None:
    c = contract(gateway(), network)
    with pytest.raises(EndorseError) as err:
        c.submit_transaction("FailOnOrg", "Org2MSP", _key(), endorsing_organizations=["Org1MSP", "Org2MSP"])
    failing = [d for d in err.value.details if d.msp_id == "Org2MSP"]
    assert failing and "refused by Org2MSP on purpose" in failing[0].message
    assert failing[0].address == f"127.0.0.1:{network.topology.org('org2').peer_port}"


def test_too_few_endorsers_fail_the_commit_with_endorsement_policy_failure(
    network: Network, gateway: GatewayFactory
) -> None:
    c = contract(gateway(), network)
    with pytest.raises(CommitError) as err:
        c.submit_transaction("Put", _key(), "v", endorsing_organizations=["Org1MSP"])
    assert err.value.code_name == "ENDORSEMENT_POLICY_FAILURE"
    assert err.value.block_number > 0


def test_non_deterministic_endorsements_are_refused(network: Network, gateway: GatewayFactory) -> None:
    c = contract(gateway(), network)
    with pytest.raises(EndorseError) as err:
        c.submit_transaction("PutEndorserOrg", _key(), endorsing_organizations=["Org1MSP", "Org2MSP"])
    assert "do not match" in str(err.value) or "mismatch" in str(err.value).lower()


def _foreign_identity(msp_id: str) -> tuple[Identity, ec.EllipticCurvePrivateKey]:
    intruder = issue("intruder")
    return Identity(msp_id, intruder.pem.encode()), intruder.key


@pytest.mark.parametrize("msp_id", ["EvilMSP", "Org1MSP"])
def test_an_identity_not_issued_by_a_member_ca_is_refused(network: Network, msp_id: str) -> None:
    from fabricml.gateway.profile import ConnectionProfile

    profile = ConnectionProfile.load(network.layout.profile(network.topology.org("org1")))
    identity, key = _foreign_identity(msp_id)
    with profile.peer().sync_channel() as channel:
        gw = sync.connect(channel, identity, ecdsa_signer(key))
        c = contract(gw, network)
        with pytest.raises(GatewayError) as err:
            c.submit_transaction("Put", _key(), "intrusion")
    text = str(err.value).lower()
    assert "access denied" in text or "creator" in text or "unknown" in text or "certificate" in text


def test_offline_signing_drives_every_step_without_a_private_key_in_the_client(
    network: Network, gateway: GatewayFactory
) -> None:
    from fabricml.gateway.profile import ConnectionProfile

    profile = ConnectionProfile.load(network.layout.profile(network.topology.org("org1")))
    _, signer, _ = profile.identity("user1")  # stands in for an HSM or a remote signer
    gw = gateway(signer=False)
    c = contract(gw, network)
    k = _key()

    unsigned = c.new_proposal("Put", [k, "signed offline"])
    with pytest.raises(UnsignedError):
        unsigned.endorse()
    proposal = gw.new_signed_proposal(unsigned.to_bytes(), signer(unsigned.digest()))
    assert proposal.transaction_id == unsigned.transaction_id
    assert unsigned.digest() == sha256(proposal._inner._proposed.proposal.proposal_bytes)

    unsigned_tx = proposal.endorse()
    assert unsigned_tx.result == b"signed offline"
    transaction = gw.new_signed_transaction(unsigned_tx.to_bytes(), signer(unsigned_tx.digest()))
    unsigned_commit = transaction.submit()
    commit = gw.new_signed_commit(unsigned_commit.to_bytes(), signer(unsigned_commit.digest()))
    status = commit.status()
    assert status.successful and status.transaction_id == unsigned.transaction_id
    assert contract(gateway(), network).evaluate_transaction("Get", k) == b"signed offline"


def test_a_signature_over_the_wrong_digest_is_refused(network: Network, gateway: GatewayFactory) -> None:
    from fabricml.gateway.profile import ConnectionProfile

    profile = ConnectionProfile.load(network.layout.profile(network.topology.org("org1")))
    _, signer, _ = profile.identity("user1")
    gw = gateway(signer=False)
    unsigned = contract(gw, network).new_proposal("Put", [_key(), "x"])
    forged = gw.new_signed_proposal(unsigned.to_bytes(), signer(sha256(b"something else")))
    with pytest.raises(EndorseError):
        forged.endorse()
