"""The Gateway client with only its lowest layer, the gRPC stub, replaced by a fake."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature
from cryptography.x509.oid import NameOID
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import proposal_pb2, proposal_response_pb2, transaction_pb2
from google.protobuf import any_pb2
from google.rpc import status_pb2

from fabricml.gateway import (
    CommitError,
    EndorseError,
    Identity,
    connect,
    ecdsa_signer,
    ed25519_signer,
    signer_from_pem,
)
from fabricml.gateway._client import UnsignedError
from fabricml.gateway.signing import identity_hash

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _identity(key: Any) -> Identity:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "user1")])
    now = datetime.datetime.now(datetime.UTC)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, algorithm)
    )
    return Identity("Org1MSP", cert.public_bytes(serialization.Encoding.PEM))


def _prepared_envelope(result: bytes, channel: str = "consortium") -> common_pb2.Envelope:
    action = proposal_pb2.ChaincodeAction(response=proposal_response_pb2.Response(status=200, payload=result))
    prp = proposal_response_pb2.ProposalResponsePayload(extension=action.SerializeToString())
    cap = transaction_pb2.ChaincodeActionPayload(
        action=transaction_pb2.ChaincodeEndorsedAction(proposal_response_payload=prp.SerializeToString())
    )
    tx = transaction_pb2.Transaction(
        actions=[transaction_pb2.TransactionAction(payload=cap.SerializeToString())]
    )
    header = common_pb2.Header(
        channel_header=common_pb2.ChannelHeader(channel_id=channel).SerializeToString()
    )
    return common_pb2.Envelope(
        payload=common_pb2.Payload(header=header, data=tx.SerializeToString()).SerializeToString()
    )


class FakeGatewayStub:
    """Records requests and answers like a peer's Gateway service would."""

    def __init__(self, result: bytes = b"ok", commit_code: int = transaction_pb2.VALID) -> None:
        self.requests: dict[str, Any] = {}
        self.result = result
        self.commit_code = commit_code
        self.endorse_error: grpc.aio.AioRpcError | None = None

    async def Evaluate(self, request: Any, timeout: float) -> Any:
        self.requests["Evaluate"] = (request, timeout)
        return gateway_pb2.EvaluateResponse(
            result=proposal_response_pb2.Response(status=200, payload=self.result)
        )

    async def Endorse(self, request: Any, timeout: float) -> Any:
        self.requests["Endorse"] = (request, timeout)
        if self.endorse_error is not None:
            raise self.endorse_error
        return gateway_pb2.EndorseResponse(prepared_transaction=_prepared_envelope(self.result))

    async def Submit(self, request: Any, timeout: float) -> Any:
        self.requests["Submit"] = (request, timeout)
        return gateway_pb2.SubmitResponse()

    async def CommitStatus(self, request: Any, timeout: float) -> Any:
        self.requests["CommitStatus"] = (request, timeout)
        return gateway_pb2.CommitStatusResponse(result=self.commit_code, block_number=7)


class FakeChannel:
    """Stands in for grpc.aio.Channel: the stubs built on it are replaced right away."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def _gateway(stub: FakeGatewayStub, key: Any = None, signer: bool = True) -> Any:
    key = key or ec.generate_private_key(ec.SECP256R1())
    sign, hash_ = signer_from_pem(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    gw = connect(FakeChannel(), _identity(key), sign if signer else None, hash_)
    gw._client.gateway = stub
    return gw, key


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_a_proposal_carries_channel_chaincode_qualified_function_arguments_and_transient_data() -> None:
    stub = FakeGatewayStub()
    gw, _ = _gateway(stub)
    contract = gw.get_network("consortium").get_contract("fabricml", "Conformance")
    proposal = contract.new_proposal("Put", ["k", b"\x00v"], transient={"secret": "s"})
    prop = proposal_pb2.Proposal.FromString(proposal._proposed.proposal.proposal_bytes)
    header = common_pb2.Header.FromString(prop.header)
    ch = common_pb2.ChannelHeader.FromString(header.channel_header)
    sig = common_pb2.SignatureHeader.FromString(header.signature_header)
    assert ch.channel_id == "consortium" and ch.type == common_pb2.ENDORSER_TRANSACTION
    assert ch.tx_id == proposal.transaction_id == hashlib.sha256(sig.nonce + sig.creator).hexdigest()
    assert len(sig.nonce) == 24 and sig.creator == gw.identity.creator()
    ext = proposal_pb2.ChaincodeHeaderExtension.FromString(ch.extension)
    assert ext.chaincode_id.name == "fabricml"
    payload = proposal_pb2.ChaincodeProposalPayload.FromString(prop.payload)
    assert dict(payload.TransientMap) == {"secret": b"s"}
    from fabric_protos.peer import chaincode_pb2

    spec = chaincode_pb2.ChaincodeInvocationSpec.FromString(payload.input)
    assert list(spec.chaincode_spec.input.args) == [b"Conformance:Put", b"k", b"\x00v"]


def test_ecdsa_signatures_verify_and_are_always_low_s() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    sign = ecdsa_signer(key)
    for i in range(64):
        digest = hashlib.sha256(f"message {i}".encode()).digest()
        signature = sign(digest)
        key.public_key().verify(signature, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        _, s = decode_dss_signature(signature)
        assert s <= P256_ORDER // 2


def test_ed25519_signs_the_whole_message() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    sign, hash_ = signer_from_pem(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    assert hash_ is identity_hash
    key.public_key().verify(sign(b"whole message"), b"whole message")
    assert ed25519_signer(key)(b"m") == key.sign(b"m")


def test_submit_transaction_endorses_signs_submits_and_waits_for_a_valid_commit() -> None:
    stub = FakeGatewayStub(result=b"the result")
    gw, key = _gateway(stub)
    contract = gw.get_network("consortium").get_contract("fabricml")
    assert _run(contract.submit_transaction("Put", "k", "v")) == b"the result"
    endorse, _ = stub.requests["Endorse"]
    submit, _ = stub.requests["Submit"]
    status, _ = stub.requests["CommitStatus"]
    assert submit.transaction_id == endorse.transaction_id
    envelope = submit.prepared_transaction
    key.public_key().verify(envelope.signature, envelope.payload, ec.ECDSA(hashes.SHA256()))
    request = gateway_pb2.CommitStatusRequest.FromString(status.request)
    assert request.transaction_id == endorse.transaction_id and request.identity == gw.identity.creator()
    key.public_key().verify(status.signature, status.request, ec.ECDSA(hashes.SHA256()))


def test_chosen_endorsing_organizations_and_deadlines_reach_the_gateway() -> None:
    stub = FakeGatewayStub()
    gw, _ = _gateway(stub)
    contract = gw.get_network("consortium").get_contract("fabricml")
    _run(contract.submit_transaction("Put", endorsing_organizations=["Org1MSP", "Org3MSP"]))
    request, timeout = stub.requests["Endorse"]
    assert list(request.endorsing_organizations) == ["Org1MSP", "Org3MSP"]
    assert timeout == 15.0
    _run(contract.new_proposal("Get").evaluate(timeout=2.5))
    assert stub.requests["Evaluate"][1] == 2.5


def test_an_invalid_commit_raises_commit_error_with_the_validation_code() -> None:
    stub = FakeGatewayStub(commit_code=transaction_pb2.MVCC_READ_CONFLICT)
    gw, _ = _gateway(stub)
    with pytest.raises(CommitError) as err:
        _run(gw.get_network("consortium").get_contract("fabricml").submit_transaction("Put"))
    assert err.value.code_name == "MVCC_READ_CONFLICT" and err.value.block_number == 7


def test_endorse_errors_carry_the_per_peer_details_from_grpc_status() -> None:
    detail = gateway_pb2.ErrorDetail(
        address="127.0.0.1:7110", msp_id="Org2MSP", message="chaincode response 500, no"
    )
    packed = any_pb2.Any()
    packed.Pack(detail)
    status = status_pb2.Status(
        code=grpc.StatusCode.ABORTED.value[0], message="failed to endorse", details=[packed]
    )
    stub = FakeGatewayStub()
    stub.endorse_error = grpc.aio.AioRpcError(
        grpc.StatusCode.ABORTED,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(("grpc-status-details-bin", status.SerializeToString())),
        details="failed to endorse",
    )
    gw, _ = _gateway(stub)
    with pytest.raises(EndorseError) as err:
        _run(gw.get_network("consortium").get_contract("fabricml").submit_transaction("Put"))
    e = err.value
    assert e.code == grpc.StatusCode.ABORTED and e.__cause__ is stub.endorse_error
    assert [(d.address, d.msp_id, d.message) for d in e.details] == [
        ("127.0.0.1:7110", "Org2MSP", "chaincode response 500, no")
    ]
    assert e.transaction_id == stub.requests["Endorse"][0].transaction_id
    assert "Org2MSP" in str(e)


def test_without_a_signer_each_step_must_be_signed_offline() -> None:
    stub = FakeGatewayStub()
    gw, key = _gateway(stub, signer=False)
    proposal = gw.get_network("consortium").get_contract("fabricml").new_proposal("Put")
    with pytest.raises(UnsignedError):
        _run(proposal.endorse())
    sign = ecdsa_signer(key)
    signed = gw.new_signed_proposal(proposal.to_bytes(), sign(proposal.digest()))
    transaction = _run(signed.endorse())
    assert stub.requests["Endorse"][0].proposed_transaction.signature == sign_check(key, signed)
    with pytest.raises(UnsignedError):
        _run(transaction.submit())


def sign_check(key: Any, proposal: Any) -> bytes:
    signature = proposal._proposed.proposal.signature
    key.public_key().verify(signature, proposal._proposed.proposal.proposal_bytes, ec.ECDSA(hashes.SHA256()))
    return bytes(signature)


def test_arguments_of_other_types_are_refused_by_name() -> None:
    gw, _ = _gateway(FakeGatewayStub())
    with pytest.raises(TypeError, match="int"):
        gw.get_network("consortium").get_contract("fabricml").new_proposal("Put", [1])


def test_with_mutual_tls_block_event_requests_carry_the_client_certificate_hash() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    identity = _identity(key)
    tls_cert = _identity(ec.generate_private_key(ec.SECP256R1())).credentials
    sign, hash_ = signer_from_pem(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    sent: list[Any] = []

    class FakeDeliver:
        def Deliver(self, requests: Any) -> Any:
            sent.extend(requests)
            return None

    gw = connect(FakeChannel(), identity, sign, hash_, tls_client_certificate=tls_cert)
    gw._client.deliver = FakeDeliver()
    gw.get_network("consortium").block_events(start_block=5)
    header = common_pb2.Payload.FromString(sent[0].payload).header
    channel_header = common_pb2.ChannelHeader.FromString(header.channel_header)
    der = x509.load_pem_x509_certificate(tls_cert).public_bytes(serialization.Encoding.DER)
    assert channel_header.tls_cert_hash == hashlib.sha256(der).digest()
    assert channel_header.type == common_pb2.DELIVER_SEEK_INFO
