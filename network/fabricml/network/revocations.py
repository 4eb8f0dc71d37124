"""Members' certificate revocation lists as the channel carries them, kept in the
site (revocations/<org>.crl.pem) for its artifact store, which refuses a revoked
certificate and, failing closed, every certificate of a CA it has no list of.

Each site publishes its CA's list in its own MSP in the channel config when it comes up
(and `identity revoke` publishes each new one). A site's follower (`python -m
fabricml.network.revocations --state-dir SITE`, one of its nodes) writes every member's
list at start (then `revocations/ready`) and again at each config block: a revocation
reaches every member's store one block after it is published, reading nothing of another
site."""

from __future__ import annotations

import argparse
import base64
import logging
import sys
from pathlib import Path
from typing import Any

from cryptography import x509
from fabric_protos.common import common_pb2, configtx_pb2
from fabric_protos.msp import msp_config_pb2

from fabricml.gateway import sync
from fabricml.gateway.profile import ConnectionProfile

from .channelconfig import ChannelConfig
from .layout import SiteLayout
from .site import Site

log = logging.getLogger("fabricml.revocations")
CONFIG = common_pb2.HeaderType.Value("CONFIG")
FOLLOWER_IDENTITY = "auditor"  # reads blocks; may not transact for the org


def lists_in_config(config: dict[str, Any]) -> dict[str, bytes]:
    """MSP ID -> its CA's CRL (PEM), from a config decoded by configtxlator."""
    out = {}
    for msp_id, group in config["channel_group"]["groups"]["Application"]["groups"].items():
        pems = group["values"]["MSP"]["value"]["config"].get("revocation_list") or []
        if pems:
            out[msp_id] = base64.b64decode(pems[0])
    return out


def lists_in_block(block: common_pb2.Block) -> dict[str, bytes] | None:
    """MSP ID -> CRL from a config block; None for a block of transactions."""
    envelope = common_pb2.Envelope.FromString(block.data.data[0])
    payload = common_pb2.Payload.FromString(envelope.payload)
    if common_pb2.ChannelHeader.FromString(payload.header.channel_header).type != CONFIG:
        return None
    config = configtx_pb2.ConfigEnvelope.FromString(payload.data).config
    out = {}
    for msp_id, group in config.channel_group.groups["Application"].groups.items():
        msp = msp_config_pb2.MSPConfig.FromString(group.values["MSP"].value)
        fabric = msp_config_pb2.FabricMSPConfig.FromString(msp.config)
        if fabric.revocation_list:
            out[msp_id] = bytes(fabric.revocation_list[0])
    return out


def write_lists(layout: SiteLayout, by_msp: dict[str, str], lists: dict[str, bytes]) -> list[str]:
    """Write each member's list (by_msp: MSP ID -> member name) where it changed; the names."""
    written = []
    layout.revocations.mkdir(exist_ok=True)
    for msp_id, name in sorted(by_msp.items()):
        data, path = lists.get(msp_id), layout.member_crl(name)
        if data is None or (path.exists() and path.read_bytes() == data):
            continue
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)  # readers see the old list or the new one, never half of one
        written.append(name)
    return written


def missing_lists(layout: SiteLayout, names: list[str]) -> list[str]:
    """The members among `names` whose list the site does not hold."""
    return sorted(n for n in names if not layout.member_crl(n).exists())


def revoked_serials(pem: bytes) -> set[int]:
    return {entry.serial_number for entry in x509.load_pem_x509_crl(pem)}


def publish_own(site: Site) -> bool:
    """Put the CA's list into the channel unless the channel has one naming the same
    certificates; True if a config update was made."""
    crl = site.ca.revocation_list()
    published = lists_in_config(ChannelConfig(site.tools).current(site.org)).get(site.org.msp_id)
    if published is not None and revoked_serials(published) == revoked_serials(crl):
        return False
    ChannelConfig(site.tools).set_revocation_list(site.org, crl)
    return True


def last_config_number(block: common_pb2.Block) -> int:
    """The number of the config block in force at `block` (from its orderer metadata)."""
    signatures = block.metadata.metadata[common_pb2.BlockMetadataIndex.Value("SIGNATURES")]
    value = common_pb2.Metadata.FromString(signatures).value
    return int(common_pb2.OrdererBlockMetadata.FromString(value).last_config.index)


def follow(site: Site) -> None:
    """Write every member's list from the config in force, then again at every config
    block, until the stream ends. Reads blocks from the site's own peer, nothing else."""
    by_msp = {m.bundle.msp_id: m.bundle.name for m in site.members.all()}
    profile = ConnectionProfile.load(site.layout.profile(site.org.name))
    identity, signer, hash_ = profile.identity(FOLLOWER_IDENTITY)
    with profile.peer().sync_channel() as channel:
        network = sync.connect(channel, identity, signer, hash_).get_network(site.channel)
        with network.block_events(network.height() - 1) as newest:
            start = last_config_number(next(newest))
        with network.block_events(start) as blocks:
            for block in blocks:
                lists = lists_in_block(block)
                if lists is None:
                    continue
                written = write_lists(site.layout, by_msp, lists)
                names = ", ".join(written) or "none"
                log.info("config block %d: lists written: %s", block.header.number, names)
                site.layout.revocations_ready.touch()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, required=True, help="the site's directory")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    follow(Site.open(args.state_dir))
    log.error("the block stream ended")
    sys.exit(1)


if __name__ == "__main__":
    main()
