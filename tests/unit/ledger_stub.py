"""A peer's Gateway service in-process, for unit tests of the typed contract clients: the
real Gateway client talks to it through its lowest layer, the gRPC stub."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import chaincode_pb2, proposal_pb2, proposal_response_pb2, transaction_pb2

from fabricml.gateway import Identity, sync
from fabricml.gateway import connect as connect_async
from fabricml.gateway.signing import signer_from_pem

# (contract:function, args) -> the chaincode's answer
Answer = Callable[[str, list[str]], bytes]


def invocation(signed_proposal: Any) -> tuple[str, list[str]]:
    """The qualified function and arguments a signed proposal asks the chaincode for."""
    proposal = proposal_pb2.Proposal.FromString(signed_proposal.proposal_bytes)
    payload = proposal_pb2.ChaincodeProposalPayload.FromString(proposal.payload)
    spec = chaincode_pb2.ChaincodeInvocationSpec.FromString(payload.input)
    function, *args = (a.decode() for a in spec.chaincode_spec.input.args)
    return function, args


def _prepared(result: bytes) -> common_pb2.Envelope:
    action = proposal_pb2.ChaincodeAction(response=proposal_response_pb2.Response(status=200, payload=result))
    prp = proposal_response_pb2.ProposalResponsePayload(extension=action.SerializeToString())
    cap = transaction_pb2.ChaincodeActionPayload(
        action=transaction_pb2.ChaincodeEndorsedAction(proposal_response_payload=prp.SerializeToString())
    )
    tx = transaction_pb2.Transaction(
        actions=[transaction_pb2.TransactionAction(payload=cap.SerializeToString())]
    )
    header = common_pb2.Header(
        channel_header=common_pb2.ChannelHeader(channel_id="consortium").SerializeToString()
    )
    return common_pb2.Envelope(
        payload=common_pb2.Payload(header=header, data=tx.SerializeToString()).SerializeToString()
    )


class LedgerStub:
    """Answers Evaluate and Endorse with `answer(function, args)`; records every call."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.calls: list[tuple[str, str, list[str]]] = []  # (Evaluate|Endorse, function, args)

    def _result(self, kind: str, request: Any) -> bytes:
        function, args = invocation(request.proposed_transaction)
        self.calls.append((kind, function, args))
        return self.answer(function, args)

    async def Evaluate(self, request: Any, timeout: float) -> Any:
        result = proposal_response_pb2.Response(status=200, payload=self._result("Evaluate", request))
        return gateway_pb2.EvaluateResponse(result=result)

    async def Endorse(self, request: Any, timeout: float) -> Any:
        return gateway_pb2.EndorseResponse(prepared_transaction=_prepared(self._result("Endorse", request)))

    async def Submit(self, request: Any, timeout: float) -> Any:
        return gateway_pb2.SubmitResponse()

    async def CommitStatus(self, request: Any, timeout: float) -> Any:
        return gateway_pb2.CommitStatusResponse(result=transaction_pb2.VALID, block_number=7)


def _signing_identity() -> tuple[Identity, Any, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "trainer")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    signer, hash_ = signer_from_pem(pem)
    return Identity("Org1MSP", cert.public_bytes(serialization.Encoding.PEM)), signer, hash_


@contextmanager
def sync_network(stub: LedgerStub) -> Iterator[sync.Network]:
    """The synchronous Gateway client's network, its gRPC stub replaced by `stub`."""
    with sync.Channel("127.0.0.1:1") as channel:  # never dialled: the stub answers
        gateway = sync.connect(channel, *_signing_identity())
        gateway._inner._client.gateway = stub
        yield gateway.get_network("consortium")


class _NoChannel:
    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def async_network(stub: LedgerStub) -> Any:
    """The asyncio Gateway client's network, its gRPC stub replaced by `stub`."""
    gateway = connect_async(_NoChannel(), *_signing_identity())
    gateway._client.gateway = stub
    return gateway.get_network("consortium")
