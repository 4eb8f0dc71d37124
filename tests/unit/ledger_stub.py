"""A peer's Gateway service in-process, for unit tests of the typed contract clients: the
real Gateway client talks to it through its lowest layer, the gRPC stub."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import chaincode_pb2, proposal_pb2, proposal_response_pb2, transaction_pb2

from fabricml.gateway import Identity, RetryPolicy, sync
from fabricml.gateway import connect as connect_async
from fabricml.gateway.retry import DEFAULT
from fabricml.gateway.signing import signer_from_pem

from .test_gateway_client import FakeChannel, _identity, _prepared_envelope

# (contract:function, args) -> the chaincode's answer
Answer = Callable[[str, list[str]], bytes]


def invocation(signed_proposal: Any) -> tuple[str, list[str]]:
    """The qualified function and arguments a signed proposal asks the chaincode for."""
    proposal = proposal_pb2.Proposal.FromString(signed_proposal.proposal_bytes)
    payload = proposal_pb2.ChaincodeProposalPayload.FromString(proposal.payload)
    spec = chaincode_pb2.ChaincodeInvocationSpec.FromString(payload.input)
    function, *args = (a.decode() for a in spec.chaincode_spec.input.args)
    return function, args


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
        return gateway_pb2.EndorseResponse(
            prepared_transaction=_prepared_envelope(self._result("Endorse", request))
        )

    async def Submit(self, request: Any, timeout: float) -> Any:
        return gateway_pb2.SubmitResponse()

    async def CommitStatus(self, request: Any, timeout: float) -> Any:
        return gateway_pb2.CommitStatusResponse(result=transaction_pb2.VALID, block_number=7)


def _signing_identity() -> tuple[Identity, Any, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    signer, hash_ = signer_from_pem(pem)
    return _identity(key), signer, hash_


@contextmanager
def sync_network(stub: LedgerStub, retry: RetryPolicy = DEFAULT) -> Iterator[sync.Network]:
    """The synchronous Gateway client's network, its gRPC stub replaced by `stub`."""
    with sync.Channel("127.0.0.1:1") as channel:  # never dialled: the stub answers
        gateway = sync.connect(channel, *_signing_identity(), retry=retry)
        gateway._inner._client.gateway = stub
        yield gateway.get_network("consortium")


def async_network(stub: LedgerStub) -> Any:
    """The asyncio Gateway client's network, its gRPC stub replaced by `stub`."""
    gateway = connect_async(FakeChannel(), *_signing_identity())
    gateway._client.gateway = stub
    return gateway.get_network("consortium")
