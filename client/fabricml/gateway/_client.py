"""What every step needs: the Gateway stubs, the signing identity and the deadlines (private)."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from fabric_protos.gateway import gateway_pb2_grpc
from fabric_protos.peer import events_pb2_grpc

from .identity import Identity
from .retry import DEFAULT, RetryPolicy
from .signing import Hash, Signer


@dataclass(frozen=True)
class Deadlines:
    """Per-call timeouts in seconds, like the official clients' defaults."""

    evaluate: float = 5.0
    endorse: float = 15.0
    submit: float = 5.0
    commit_status: float = 60.0


class UnsignedError(RuntimeError):
    """A step needs a signature but the gateway has no signer: sign offline instead."""


class Client:
    def __init__(
        self,
        channel: grpc.aio.Channel,
        identity: Identity,
        signer: Signer | None,
        hash: Hash,
        deadlines: Deadlines,
        tls_cert_hash: bytes = b"",
        retry: RetryPolicy = DEFAULT,
    ) -> None:
        self.gateway = gateway_pb2_grpc.GatewayStub(channel)
        # With mutual TLS the peer binds block-event requests to the client's TLS certificate.
        self.tls_cert_hash = tls_cert_hash
        self.deliver = events_pb2_grpc.DeliverStub(channel)
        self.identity = identity
        self.creator = identity.creator()
        self.signer = signer
        self.hash = hash
        self.deadlines = deadlines
        self.retry = retry

    def sign(self, message: bytes) -> bytes:
        """Sign a message, or return b"" when signing happens offline."""
        if self.signer is None:
            return b""
        return self.signer(self.hash(message))

    def require_signature(self, signature: bytes, what: str) -> None:
        if not signature:
            raise UnsignedError(
                f"the {what} is not signed: this gateway has no signer, so take its digest(), sign it, "
                f"and rebuild it with the gateway's new_signed_{what.replace(' ', '_')}()"
            )
