"""ConfigSignatures over a config update, and the envelope that carries them to the orderer."""

from __future__ import annotations

import os

from fabric_protos.common import common_pb2, configtx_pb2
from fabric_protos.msp import identities_pb2

from .orderer import Signing, signed_envelope


def config_signature(update: bytes, signing: Signing) -> bytes:
    """One admin's ConfigSignature: a signature over signature_header || config_update."""
    header = common_pb2.SignatureHeader(creator=signing.identity.creator(), nonce=os.urandom(24))
    header_bytes = header.SerializeToString()
    signature = signing.sign(header_bytes + update)
    return bytes(
        configtx_pb2.ConfigSignature(signature_header=header_bytes, signature=signature).SerializeToString()
    )


def signer_msp(signature: bytes) -> str:
    """The MSP ID named in a ConfigSignature's header."""
    sig = configtx_pb2.ConfigSignature.FromString(signature)
    header = common_pb2.SignatureHeader.FromString(sig.signature_header)
    return str(identities_pb2.SerializedIdentity.FromString(header.creator).mspid)


def update_envelope(
    channel: str, update: bytes, signatures: list[bytes], submitter: Signing
) -> common_pb2.Envelope:
    """The CONFIG_UPDATE envelope with exactly these ConfigSignatures.

    The submitter signs the envelope (the orderer checks it may write to the channel)
    but adds no ConfigSignature of its own: only the collected ones count for policies."""
    envelope = configtx_pb2.ConfigUpdateEnvelope(
        config_update=update,
        signatures=[configtx_pb2.ConfigSignature.FromString(s) for s in signatures],
    )
    return signed_envelope(common_pb2.CONFIG_UPDATE, channel, envelope.SerializeToString(), submitter)


def applied_update(block: common_pb2.Block) -> bytes | None:
    """The ConfigUpdate bytes a config block applied, or None if the block is not a config block."""
    if len(block.data.data) != 1:
        return None
    payload = common_pb2.Payload.FromString(common_pb2.Envelope.FromString(block.data.data[0]).payload)
    header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
    if header.type != common_pb2.CONFIG:
        return None
    config_envelope = configtx_pb2.ConfigEnvelope.FromString(payload.data)
    last = common_pb2.Payload.FromString(config_envelope.last_update.payload)
    return bytes(configtx_pb2.ConfigUpdateEnvelope.FromString(last.data).config_update)


def config_of(block: common_pb2.Block) -> configtx_pb2.Config:
    """The channel config a config block carries."""
    payload = common_pb2.Payload.FromString(common_pb2.Envelope.FromString(block.data.data[0]).payload)
    return configtx_pb2.ConfigEnvelope.FromString(payload.data).config
