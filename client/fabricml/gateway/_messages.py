"""Builders for the protobuf messages the Gateway protocol signs (private)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence

from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2
from fabric_protos.orderer import ab_pb2
from fabric_protos.peer import chaincode_pb2, proposal_pb2, proposal_response_pb2, transaction_pb2
from google.protobuf import timestamp_pb2

NONCE_BYTES = 24
MAX_BLOCK = 2**64 - 1


def new_nonce() -> bytes:
    return os.urandom(NONCE_BYTES)


def transaction_id(nonce: bytes, creator: bytes) -> str:
    return hashlib.sha256(nonce + creator).hexdigest()


def _now() -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.GetCurrentTime()
    return ts


def _header(
    kind: int, channel: str, tx_id: str, creator: bytes, nonce: bytes, extension: bytes = b""
) -> bytes:
    channel_header = common_pb2.ChannelHeader(
        type=kind, channel_id=channel, tx_id=tx_id, timestamp=_now(), epoch=0, extension=extension
    )
    signature_header = common_pb2.SignatureHeader(creator=creator, nonce=nonce)
    return bytes(
        common_pb2.Header(
            channel_header=channel_header.SerializeToString(),
            signature_header=signature_header.SerializeToString(),
        ).SerializeToString()
    )


def proposal(
    channel: str,
    chaincode: str,
    args: Sequence[bytes],
    transient: Mapping[str, bytes],
    creator: bytes,
) -> tuple[str, bytes]:
    """(transaction ID, serialized Proposal) for invoking `args[0]` with the rest as arguments."""
    nonce = new_nonce()
    tx_id = transaction_id(nonce, creator)
    cc_id = chaincode_pb2.ChaincodeID(name=chaincode)
    extension = proposal_pb2.ChaincodeHeaderExtension(chaincode_id=cc_id).SerializeToString()
    header = _header(common_pb2.ENDORSER_TRANSACTION, channel, tx_id, creator, nonce, extension)
    spec = chaincode_pb2.ChaincodeInvocationSpec(
        chaincode_spec=chaincode_pb2.ChaincodeSpec(
            chaincode_id=cc_id, input=chaincode_pb2.ChaincodeInput(args=args)
        )
    )
    payload = proposal_pb2.ChaincodeProposalPayload(
        input=spec.SerializeToString(), TransientMap=dict(transient)
    )
    prop = proposal_pb2.Proposal(header=header, payload=payload.SerializeToString())
    return tx_id, prop.SerializeToString()


def result_of(envelope: common_pb2.Envelope) -> bytes:
    """The chaincode's return value, from inside a prepared transaction."""
    payload = common_pb2.Payload.FromString(envelope.payload)
    tx = transaction_pb2.Transaction.FromString(payload.data)
    for action in tx.actions:
        cap = transaction_pb2.ChaincodeActionPayload.FromString(action.payload)
        prp = proposal_response_pb2.ProposalResponsePayload.FromString(cap.action.proposal_response_payload)
        return bytes(proposal_pb2.ChaincodeAction.FromString(prp.extension).response.payload)
    return b""


def start_position(start_block: int | None) -> ab_pb2.SeekPosition:
    """A given block, or else the next block to be committed."""
    if start_block is None:
        return ab_pb2.SeekPosition(next_commit=ab_pb2.SeekNextCommit())
    return ab_pb2.SeekPosition(specified=ab_pb2.SeekSpecified(number=start_block))


def commit_status_request(channel: str, tx_id: str, creator: bytes) -> bytes:
    return bytes(
        gateway_pb2.CommitStatusRequest(
            transaction_id=tx_id, channel_id=channel, identity=creator
        ).SerializeToString()
    )


def chaincode_events_request(
    channel: str, chaincode: str, creator: bytes, start_block: int | None, after_transaction_id: str | None
) -> bytes:
    return bytes(
        gateway_pb2.ChaincodeEventsRequest(
            channel_id=channel,
            chaincode_id=chaincode,
            identity=creator,
            start_position=start_position(start_block),
            after_transaction_id=after_transaction_id or "",
        ).SerializeToString()
    )


def seek_envelope_payload(
    channel: str, creator: bytes, start_block: int | None, tls_cert_hash: bytes = b""
) -> bytes:
    """The unsigned payload of a Deliver request: every block from start (or the next one) on."""
    nonce = new_nonce()
    tx_id = transaction_id(nonce, creator)
    channel_header = common_pb2.ChannelHeader(
        type=common_pb2.DELIVER_SEEK_INFO,
        channel_id=channel,
        tx_id=tx_id,
        timestamp=_now(),
        tls_cert_hash=tls_cert_hash,
    )
    signature_header = common_pb2.SignatureHeader(creator=creator, nonce=nonce)
    header = common_pb2.Header(
        channel_header=channel_header.SerializeToString(),
        signature_header=signature_header.SerializeToString(),
    )
    seek = ab_pb2.SeekInfo(
        start=start_position(start_block),
        stop=ab_pb2.SeekPosition(specified=ab_pb2.SeekSpecified(number=MAX_BLOCK)),
        behavior=ab_pb2.SeekInfo.BLOCK_UNTIL_READY,
    )
    return bytes(common_pb2.Payload(header=header, data=seek.SerializeToString()).SerializeToString())


def channel_of_proposal(proposal_bytes: bytes) -> str:
    header = common_pb2.Header.FromString(proposal_pb2.Proposal.FromString(proposal_bytes).header)
    return str(common_pb2.ChannelHeader.FromString(header.channel_header).channel_id)


def channel_of_envelope(envelope: common_pb2.Envelope) -> str:
    header = common_pb2.Payload.FromString(envelope.payload).header
    return str(common_pb2.ChannelHeader.FromString(header.channel_header).channel_id)
