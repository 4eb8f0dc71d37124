"""A newcomer sponsored by its signed public bundle (`fabricml site export`): what the
sponsor records about it, and each signer's check that an add-org proposal adds exactly
the org of the bundle that signer imported (and compared fingerprints for) itself.

The contract stores the digest and fingerprint it is given; only a member holding the
bundle can tell that the update's MSP is that bundle's."""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from fabric_protos.common import configtx_pb2
from fabric_protos.msp import msp_config_pb2

from ..bundle import SiteBundle
from .review import ReviewError


def sponsorship(bundle: SiteBundle) -> dict[str, str]:
    """What an add-org proposal records: the bundle's digest (of its signed content) and the
    fingerprint its admin reads out of band (the digest's first 96 bits)."""
    return {"digest": bundle.digest, "fingerprint": bundle.fingerprint}


def _der(pem: bytes | str) -> bytes:
    raw = pem.encode() if isinstance(pem, str) else pem
    return x509.load_pem_x509_certificate(raw).public_bytes(Encoding.DER)


def added_msp(update: configtx_pb2.ConfigUpdate, msp_id: str) -> msp_config_pb2.FabricMSPConfig | None:
    """The MSP the update writes for the org's application group, if it writes one."""
    application = update.write_set.groups.get("Application")
    org = application.groups.get(msp_id) if application is not None else None
    if org is None or "MSP" not in org.values:
        return None
    config = msp_config_pb2.MSPConfig.FromString(org.values["MSP"].value)
    return msp_config_pb2.FabricMSPConfig.FromString(config.config)


def check_sponsored(found: dict[str, Any], update: configtx_pb2.ConfigUpdate, known: SiteBundle) -> None:
    """Refuse (ReviewError) unless the proposal sponsors the bundle this site imported for the
    newcomer and its update gives the newcomer that bundle's CA and TLS CA certificates."""
    recorded = found.get("bundle") or {}
    if recorded.get("digest") != known.digest:
        raise ReviewError(
            f"proposal {found['id']} sponsors the bundle with fingerprint {recorded.get('fingerprint')}, "
            f"not the bundle of {known.msp_id} this site imported (fingerprint {known.fingerprint})"
        )
    msp = added_msp(update, known.msp_id)
    if msp is None:
        raise ReviewError(f"proposal {found['id']} writes no MSP for {known.msp_id}")
    roots = [_der(c) for c in msp.root_certs]
    tls_roots = [_der(c) for c in msp.tls_root_certs]
    if roots != [_der(known.ca_cert)] or tls_roots != [_der(known.tls_ca_cert)] or msp.intermediate_certs:
        raise ReviewError(
            f"proposal {found['id']} gives {known.msp_id} other CA certificates than its bundle "
            f"(fingerprint {known.fingerprint})"
        )
