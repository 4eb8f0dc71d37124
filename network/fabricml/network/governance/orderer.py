"""An orderer's AtomicBroadcast service: read config blocks (Deliver), submit envelopes (Broadcast)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import grpc
from fabric_protos.common import common_pb2
from fabric_protos.orderer import ab_pb2, ab_pb2_grpc
from google.protobuf import timestamp_pb2

from fabricml.gateway import Hash, Identity, Signer

TIMEOUT = 30.0


class OrdererRefusedError(RuntimeError):
    """The orderer answered a Broadcast with a status other than SUCCESS.

    `status` is the orderer's status name (BAD_REQUEST, FORBIDDEN, ...) and `info`
    its reason, e.g. which policy a config update did not satisfy."""

    def __init__(self, address: str, status: str, info: str) -> None:
        super().__init__(f"orderer {address} refused the envelope: {status}: {info}")
        self.address = address
        self.status = status
        self.info = info


class DeliverError(RuntimeError):
    """The orderer did not deliver the block asked for."""


@dataclass(frozen=True)
class OrdererEndpoint:
    """Where an orderer listens, and the TLS root that signed its certificate."""

    address: str
    tls_root: bytes
    server_name: str | None = None

    def channel(self) -> grpc.Channel:
        options: list[tuple[str, int | str]] = [("grpc.max_receive_message_length", 100 * 1024 * 1024)]
        if self.server_name:
            options.append(("grpc.ssl_target_name_override", self.server_name))
        creds = grpc.ssl_channel_credentials(root_certificates=self.tls_root)
        return grpc.secure_channel(self.address, creds, options=options)


@dataclass(frozen=True)
class Signing:
    """Who signs: an identity, its signer and its hash (from fabricml.gateway)."""

    identity: Identity
    signer: Signer
    hash: Hash

    def sign(self, message: bytes) -> bytes:
        return self.signer(self.hash(message))


def signed_envelope(kind: int, channel: str, data: bytes, signing: Signing) -> common_pb2.Envelope:
    """An envelope of header type `kind` carrying `data`, signed by `signing`."""
    nonce = os.urandom(24)
    creator = signing.identity.creator()
    timestamp = timestamp_pb2.Timestamp()
    timestamp.GetCurrentTime()
    channel_header = common_pb2.ChannelHeader(
        type=kind,
        channel_id=channel,
        tx_id=hashlib.sha256(nonce + creator).hexdigest(),
        timestamp=timestamp,
    )
    header = common_pb2.Header(
        channel_header=channel_header.SerializeToString(),
        signature_header=common_pb2.SignatureHeader(creator=creator, nonce=nonce).SerializeToString(),
    )
    payload = common_pb2.Payload(header=header, data=data).SerializeToString()
    return common_pb2.Envelope(payload=payload, signature=signing.sign(payload))


class Orderer:
    """One orderer, spoken to with one identity; the caller closes it."""

    def __init__(self, endpoint: OrdererEndpoint, channel: str, signing: Signing) -> None:
        self.endpoint = endpoint
        self.channel_name = channel
        self.signing = signing
        self._grpc = endpoint.channel()
        self._stub = ab_pb2_grpc.AtomicBroadcastStub(self._grpc)

    def close(self) -> None:
        self._grpc.close()

    def __enter__(self) -> Orderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def broadcast(self, envelope: common_pb2.Envelope) -> None:
        """Submit one envelope; raises OrdererRefusedError unless the orderer accepts it."""
        responses = self._stub.Broadcast(iter([envelope]), timeout=TIMEOUT)
        response = next(iter(responses))
        if response.status != common_pb2.SUCCESS:
            status = common_pb2.Status.Name(response.status)
            raise OrdererRefusedError(self.endpoint.address, status, response.info)

    def block(self, number: int | None) -> common_pb2.Block:
        """Block `number`, or the newest block when number is None."""
        if number is None:
            position = ab_pb2.SeekPosition(newest=ab_pb2.SeekNewest())
        else:
            position = ab_pb2.SeekPosition(specified=ab_pb2.SeekSpecified(number=number))
        seek = ab_pb2.SeekInfo(start=position, stop=position, behavior=ab_pb2.SeekInfo.FAIL_IF_NOT_READY)
        request = signed_envelope(
            common_pb2.DELIVER_SEEK_INFO, self.channel_name, seek.SerializeToString(), self.signing
        )
        found: common_pb2.Block | None = None
        for response in self._stub.Deliver(iter([request]), timeout=TIMEOUT):
            if response.HasField("block"):
                found = response.block
            elif response.status != common_pb2.SUCCESS or found is None:
                status = common_pb2.Status.Name(response.status)
                raise DeliverError(
                    f"orderer {self.endpoint.address} did not deliver block {number}: {status}"
                )
            else:
                break
        if found is None:
            raise DeliverError(f"orderer {self.endpoint.address} closed the stream without block {number}")
        return found

    def last_config_index(self, block: common_pb2.Block) -> int:
        """The number of the config block in force at `block` (from the orderer's metadata)."""
        signatures = common_pb2.Metadata.FromString(block.metadata.metadata[common_pb2.SIGNATURES])
        meta = common_pb2.OrdererBlockMetadata.FromString(signatures.value)
        return int(meta.last_config.index)

    def latest_config_block(self) -> common_pb2.Block:
        """The channel's current config block."""
        newest = self.block(None)
        index = self.last_config_index(newest)
        return newest if index == newest.header.number else self.block(index)
