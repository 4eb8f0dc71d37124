"""Reviewing a channel's genesis (or config) block before joining: who is in it, under which
policies, ordered by whom; and refusing a block that names anyone this site does not know."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from . import txlator
from .binaries import Binaries
from .bundle import SignedBundle
from .members import Members

IMPLICIT_META, SIGNATURE = 3, 1


class GenesisError(ValueError):
    """The block names an organization, certificate or consenter this site has not accepted."""


@dataclass(frozen=True)
class OrgInChannel:
    msp_id: str
    section: str  # Application or Orderer
    root_certs: tuple[str, ...]
    tls_root_certs: tuple[str, ...]


@dataclass(frozen=True)
class ConsenterInChannel:
    host: str
    port: int
    tls_cert: str
    msp_id: str = ""  # BFT names the consenter's org; Raft does not

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class ChannelReview:
    channel: str
    consensus: str
    batch_timeout: str
    orgs: tuple[OrgInChannel, ...]
    consenters: tuple[ConsenterInChannel, ...]
    policies: dict[str, str]
    block_number: int = 0  # 0: a genesis block; more: a later config block of a running channel

    @property
    def members(self) -> list[str]:
        return sorted({o.msp_id for o in self.orgs if o.section == "Application"})

    def lines(self) -> list[str]:
        out = [f"channel {self.channel!r}: {self.consensus}, blocks cut after {self.batch_timeout}"]
        if self.block_number:
            out.append(f"config block {self.block_number} of the running channel (not its genesis block)")
        out.append(f"members ({len(self.members)}): {', '.join(self.members)}")
        out += [f"  policy {path}: {rule}" for path, rule in self.policies.items()]
        out.append(f"consenters ({len(self.consenters)}):")
        out += [f"  {c.address}" + (f" ({c.msp_id})" if c.msp_id else "") for c in self.consenters]
        return out


def _pem(b64: str) -> str:
    return base64.b64decode(b64).decode()


def _der(pem: str) -> bytes:
    return x509.load_pem_x509_certificate(pem.encode()).public_bytes(Encoding.DER)


def review(binaries: Binaries, block_path: Path) -> ChannelReview:
    """Decode a config block (configtxlator) into what an admin must check before joining."""
    block = txlator.decode(binaries, block_path, "common.Block")
    config = txlator.block_config(block)
    root = config["channel_group"]
    orgs = [
        _org(group, section)
        for section in ("Application", "Orderer")
        for group in root["groups"].get(section, {}).get("groups", {}).values()
    ]
    orderer = root["groups"]["Orderer"]
    consensus = orderer["values"]["ConsensusType"]["value"]
    return ChannelReview(
        channel=txlator.block_channel(block),
        consensus=str(consensus["type"]),
        batch_timeout=str(orderer["values"]["BatchTimeout"]["value"]["timeout"]),
        orgs=tuple(orgs),
        consenters=tuple(_consenters(orderer, consensus)),
        policies=_policies(root),
        block_number=int(block["header"].get("number") or 0),
    )


def _org(group: dict[str, Any], section: str) -> OrgInChannel:
    msp = group["values"]["MSP"]["value"]["config"]
    return OrgInChannel(
        msp_id=str(msp["name"]),
        section=section,
        root_certs=tuple(_pem(c) for c in msp.get("root_certs") or []),
        tls_root_certs=tuple(_pem(c) for c in msp.get("tls_root_certs") or []),
    )


def _consenters(orderer: dict[str, Any], consensus: dict[str, Any]) -> list[ConsenterInChannel]:
    if consensus["type"] == "BFT":
        mapping = orderer["values"]["Orderers"]["value"]["consenter_mapping"]
        return [
            ConsenterInChannel(c["host"], int(c["port"]), _pem(c["server_tls_cert"]), c["msp_id"])
            for c in mapping
        ]
    raft = consensus.get("metadata") or {}
    return [
        ConsenterInChannel(c["host"], int(c["port"]), _pem(c["server_tls_cert"])) for c in raft["consenters"]
    ]


POLICIES = (  # (what the admin reads, config group path, policy name)
    ("channel Admins", (), "Admins"),
    ("membership (Application Admins)", ("Application",), "Admins"),
    ("chaincode lifecycle (Application LifecycleEndorsement)", ("Application",), "LifecycleEndorsement"),
    ("endorsement (Application Endorsement)", ("Application",), "Endorsement"),
    ("ordering (Orderer Admins)", ("Orderer",), "Admins"),
    ("block validation (Orderer BlockValidation)", ("Orderer",), "BlockValidation"),
)


def _policies(root: dict[str, Any]) -> dict[str, str]:
    out = {}
    for label, path, name in POLICIES:
        group = root
        for step in path:
            group = group["groups"][step]
        policy = group["policies"].get(name, {}).get("policy")
        out[label] = describe_policy(policy) if policy else "(none)"
    return out


def describe_policy(policy: dict[str, Any]) -> str:
    value = policy.get("value") or {}
    if policy["type"] == IMPLICIT_META:
        return f"{value['rule']} {value['sub_policy']}"
    if policy["type"] == SIGNATURE:
        rule = value["rule"].get("n_out_of", {})
        who = [_principal(i) for i in value.get("identities", [])]
        return f"{rule.get('n', '?')} of {len(rule.get('rules', []))} signatures: {', '.join(who)}"
    return f"policy type {policy['type']}"


def _principal(identity: dict[str, Any]) -> str:
    p = identity.get("principal", {})
    if identity.get("principal_classification") == "IDENTITY":
        pem = _pem(p["id_bytes"])
        cn = x509.load_pem_x509_certificate(pem.encode()).subject.get_attributes_for_oid(
            x509.NameOID.COMMON_NAME
        )
        return f"{p.get('mspid', '?')}/{str(cn[0].value) if cn else '?'}"
    return f"{p.get('msp_identifier', '?')}.{str(p.get('role', '?')).lower()}"


def check_members(review_: ChannelReview, own_msp_id: str, members: Members) -> list[SignedBundle]:
    """Every organization and consenter in the block is one this site imported (or itself),
    with the very certificates of its bundle; returns those bundles."""
    if own_msp_id not in review_.members:
        raise GenesisError(f"{own_msp_id} is not a member of channel {review_.channel!r}; nothing to join")
    known: dict[str, SignedBundle] = {}
    for org in review_.orgs:
        signed = members.by_msp_id(org.msp_id)
        if signed is None:
            raise GenesisError(
                f"the block names organization {org.msp_id}, whose bundle this site has not imported; "
                "import it (`fabricml site import`, compare its fingerprint with its admin) or do not join"
            )
        b = signed.bundle
        if [_der(c) for c in org.root_certs] != [_der(b.ca_cert)] or [
            _der(c) for c in org.tls_root_certs
        ] != [_der(b.tls_ca_cert)]:
            raise GenesisError(
                f"the block's CA certificates for {org.msp_id} are not those of its imported bundle "
                f"(fingerprint {b.fingerprint}); do not join"
            )
        known[org.msp_id] = signed
    _check_consenters(review_, list(known.values()))
    return sorted(known.values(), key=lambda s: s.bundle.name)


def _check_consenters(review_: ChannelReview, bundles: list[SignedBundle]) -> None:
    expected = {(o.address, _der(o.tls_cert)): b.bundle.msp_id for b in bundles for o in b.bundle.orderers}
    for c in review_.consenters:
        owner = expected.get((c.address, _der(c.tls_cert)))
        if owner is None or (c.msp_id and c.msp_id != owner):
            raise GenesisError(
                f"consenter {c.address} in the block is not an orderer of any imported bundle "
                "(address and TLS certificate must match); do not join"
            )
