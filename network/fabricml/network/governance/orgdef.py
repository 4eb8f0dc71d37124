"""A newcomer organization's channel config groups, built from its public MSP folder.

The folder holds public material only: cacerts/, tlscacerts/ (optional
intermediatecerts/) and config.yaml with NodeOUs, as in a Fabric MSP. A site makes one
from every bundle it imports (`members/<org>/msp`); the sponsor of a newcomer reads it
from there (`sponsor.py`)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509

ROLES = ("admin", "peer", "client", "orderer")
_OU_KEYS = {
    "client": "ClientOUIdentifier",
    "peer": "PeerOUIdentifier",
    "admin": "AdminOUIdentifier",
    "orderer": "OrdererOUIdentifier",
}
_PRIVATE_MARKERS = (b"PRIVATE KEY", b"ENCRYPTED PRIVATE KEY")


class OrgDefinitionError(ValueError):
    """The MSP folder is not a public definition of one org; the message says what is wrong."""


@dataclass(frozen=True)
class PublicMSP:
    """One org's public MSP material, read from its folder."""

    msp_id: str
    root_certs: list[bytes]
    tls_root_certs: list[bytes]
    intermediate_certs: list[bytes]
    node_ous: dict[str, bytes]  # role -> the certificate (PEM) its OU identifier names

    def digest(self) -> str:
        """SHA-256 over the definition's certificates, in a fixed order."""
        h = hashlib.sha256(self.msp_id.encode() + b"\n")
        for group in (self.root_certs, self.intermediate_certs, self.tls_root_certs):
            for cert in group:
                h.update(hashlib.sha256(cert).digest())
        return h.hexdigest()

    def fingerprint(self) -> str:
        """A short form of the digest to read out of band (e.g. 3F2A-91C0-...)."""
        short = self.digest()[:16].upper()
        return "-".join(short[i : i + 4] for i in range(0, 16, 4))


def _pems(folder: Path, required: bool) -> list[bytes]:
    files = sorted(p for p in folder.glob("*") if p.is_file()) if folder.is_dir() else []
    if required and not files:
        raise OrgDefinitionError(f"{folder} must hold at least one PEM certificate")
    certs = []
    for f in files:
        raw = f.read_bytes()
        if any(m in raw for m in _PRIVATE_MARKERS):
            raise OrgDefinitionError(f"{f} holds a private key; a public MSP definition never does")
        try:
            x509.load_pem_x509_certificate(raw)
        except ValueError:
            raise OrgDefinitionError(f"{f} is not a PEM X.509 certificate") from None
        certs.append(raw)
    return certs


def read_public_msp(msp_id: str, folder: Path) -> PublicMSP:
    """Read and check an MSP folder of public certificates."""
    folder = Path(folder)
    for secret_dir in ("keystore", "signcerts"):
        if (folder / secret_dir).exists() and any((folder / secret_dir).iterdir()):
            raise OrgDefinitionError(
                f"{folder}/{secret_dir} is not empty: share the org's public MSP (cacerts, tlscacerts, "
                "config.yaml), never an identity's"
            )
    roots = _pems(folder / "cacerts", required=True)
    tls = _pems(folder / "tlscacerts", required=True)
    intermediates = _pems(folder / "intermediatecerts", required=False)
    config_file = folder / "config.yaml"
    if not config_file.exists():
        raise OrgDefinitionError(f"{config_file} is missing: NodeOUs tell admins, peers and clients apart")
    node_ous = (yaml.safe_load(config_file.read_text()) or {}).get("NodeOUs") or {}
    if node_ous.get("Enable") is not True:
        raise OrgDefinitionError(f"{config_file} must enable NodeOUs")
    ou_certs = {}
    for role, key in _OU_KEYS.items():
        entry = node_ous.get(key) or {}
        if entry.get("OrganizationalUnitIdentifier") != role:
            raise OrgDefinitionError(f"{config_file}: {key}.OrganizationalUnitIdentifier must be {role!r}")
        cert_path = (folder / str(entry.get("Certificate", ""))).resolve()
        if not cert_path.is_relative_to(folder.resolve()) or not cert_path.is_file():
            raise OrgDefinitionError(f"{config_file}: {key}.Certificate must name a file inside {folder}")
        ou_certs[role] = cert_path.read_bytes()
    return PublicMSP(msp_id, roots, tls, intermediates, ou_certs)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def msp_value(msp: PublicMSP) -> dict[str, Any]:
    """The org's MSP config value, in configtxlator's JSON form."""
    return {
        "mod_policy": "Admins",
        "value": {
            "type": 0,
            "config": {
                "name": msp.msp_id,
                "root_certs": [_b64(c) for c in msp.root_certs],
                "intermediate_certs": [_b64(c) for c in msp.intermediate_certs],
                "tls_root_certs": [_b64(c) for c in msp.tls_root_certs],
                "tls_intermediate_certs": [],
                "admins": [],
                "revocation_list": [],
                "organizational_unit_identifiers": [],
                "crypto_config": {
                    "signature_hash_family": "SHA2",
                    "identity_identifier_hash_function": "SHA256",
                },
                "fabric_node_ous": {
                    "enable": True,
                    **{
                        f"{role}_ou_identifier": {
                            "certificate": _b64(cert),
                            "organizational_unit_identifier": role,
                        }
                        for role, cert in msp.node_ous.items()
                    },
                },
            },
        },
        "version": "0",
    }


def signature_policy(msp_id: str, roles: tuple[str, ...]) -> dict[str, Any]:
    """OR over the org's own roles, as configtxgen writes `OR('Org.admin', ...)`."""
    return {
        "mod_policy": "Admins",
        "policy": {
            "type": 1,
            "value": {
                "identities": [
                    {
                        "principal": {"msp_identifier": msp_id, "role": r.upper()},
                        "principal_classification": "ROLE",
                    }
                    for r in roles
                ],
                "rule": {"n_out_of": {"n": 1, "rules": [{"signed_by": i} for i in range(len(roles))]}},
                "version": 0,
            },
        },
        "version": "0",
    }


def org_policies(msp_id: str, endorsement: bool) -> dict[str, Any]:
    """The same policies configgen gives the founding orgs."""
    policies = {
        "Readers": signature_policy(msp_id, ("admin", "peer", "client", "orderer")),
        "Writers": signature_policy(msp_id, ("admin", "client", "orderer")),
        "Admins": signature_policy(msp_id, ("admin",)),
    }
    if endorsement:
        policies["Endorsement"] = signature_policy(msp_id, ("peer",))
    return policies


def application_group(msp: PublicMSP, anchor_peers: Sequence[tuple[str, int]] = ()) -> dict[str, Any]:
    """The org's group under /Channel/Application."""
    values: dict[str, Any] = {"MSP": msp_value(msp)}
    if anchor_peers:
        values["AnchorPeers"] = {
            "mod_policy": "Admins",
            "value": {"anchor_peers": [{"host": h, "port": p} for h, p in anchor_peers]},
            "version": "0",
        }
    return {
        "groups": {},
        "mod_policy": "Admins",
        "policies": org_policies(msp.msp_id, True),
        "values": values,
        "version": "0",
    }


def orderer_group(msp: PublicMSP, endpoints: list[str]) -> dict[str, Any]:
    """The org's group under /Channel/Orderer, with the addresses its orderers serve."""
    values: dict[str, Any] = {"MSP": msp_value(msp)}
    if endpoints:
        values["Endpoints"] = {
            "mod_policy": "Admins",
            "value": {"addresses": list(endpoints)},
            "version": "0",
        }
    return {
        "groups": {},
        "mod_policy": "Admins",
        "policies": org_policies(msp.msp_id, False),
        "values": values,
        "version": "0",
    }
