"""A site's public bundle: what other organizations need to know about it, signed by its admin.

It holds certificates and endpoints only: the enrollment and TLS CA certificates, the
NodeOU config, the peer, the orderers (with the consenters' TLS and identity
certificates), the CA, artifact store and admin API addresses. Anyone can check the
signature; the short fingerprint is what two admins compare out of band (phone, video)
before one imports the other's bundle."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from .topology import MAX_ORDERERS_PER_ORG, TopologyError, check_host

FORMAT = "fabricml-site-bundle/1"
MAX_BUNDLE_BYTES = 256 * 1024
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
_MSP_ID = re.compile(r"^[A-Za-z][A-Za-z0-9.-]{0,63}$")
BODY_KEYS = {"format", "name", "mspId", "caCert", "tlsCaCert", "nodeOUs", "peer", "orderers", "ca",
             "artifactStore", "adminApi"}  # fmt: skip
ORDERER_KEYS = {"name", "address", "tlsCert", "identityCert"}


class BundleError(ValueError):
    """The bundle is malformed, tampered with or carries what it must not; the message says which."""


@dataclass(frozen=True)
class OrdererEndpoint:
    name: str
    address: str
    tls_cert: str  # PEM: the consenter's TLS certificate (client and server)
    identity_cert: str  # PEM: the orderer's enrollment certificate (BFT consenter identity)

    @property
    def host(self) -> str:
        return self.address.rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])


@dataclass(frozen=True)
class SiteBundle:
    """A site's public facts, as they are signed."""

    body: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.body["name"])

    @property
    def msp_id(self) -> str:
        return str(self.body["mspId"])

    @property
    def ca_cert(self) -> str:
        return str(self.body["caCert"])

    @property
    def tls_ca_cert(self) -> str:
        return str(self.body["tlsCaCert"])

    @property
    def peer_name(self) -> str:
        return str(self.body["peer"]["name"])

    @property
    def peer_address(self) -> str:
        return str(self.body["peer"]["address"])

    @property
    def orderers(self) -> list[OrdererEndpoint]:
        return [OrdererEndpoint(o["name"], o["address"], o["tlsCert"], o["identityCert"])
                for o in self.body["orderers"]]  # fmt: skip

    def canonical(self) -> bytes:
        return canonical(self.body)

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.canonical()).hexdigest()

    @property
    def fingerprint(self) -> str:
        """96 bits of the digest in groups of four, short enough to read aloud."""
        d = self.digest[:24].upper()
        return "-".join(d[i : i + 4] for i in range(0, 24, 4))


def canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


@dataclass(frozen=True)
class SignedBundle:
    bundle: SiteBundle
    signer_cert: str  # PEM of the org admin who signed
    signature: bytes

    def to_json(self) -> str:
        return json.dumps(
            {"bundle": self.bundle.body, "signer": self.signer_cert,
             "signature": base64.b64encode(self.signature).decode()},
            indent=2, sort_keys=True,
        ) + "\n"  # fmt: skip


def sign(body: dict[str, Any], admin_cert_pem: str, admin_key: Path) -> SignedBundle:
    """Sign the bundle with the org admin's enrollment key (ECDSA P-256 with SHA-256)."""
    bundle = SiteBundle(body)
    key = load_pem_private_key(admin_key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise BundleError(f"the admin key {admin_key} is not an ECDSA key; Fabric CA issues ECDSA keys")
    signed = SignedBundle(bundle, admin_cert_pem, key.sign(bundle.canonical(), ec.ECDSA(hashes.SHA256())))
    parse(signed.to_json().encode(), "the bundle being exported")  # never export what an import refuses
    return signed


def read(path: Path) -> SignedBundle:
    """Read, check and verify a bundle file; raises BundleError naming what is wrong."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise BundleError(f"no bundle at {path}") from None
    return parse(raw, str(path))


def parse(raw: bytes, source: str = "bundle") -> SignedBundle:
    if len(raw) > MAX_BUNDLE_BYTES:
        raise BundleError(f"{source} is {len(raw)} bytes; a bundle is at most {MAX_BUNDLE_BYTES}")
    text = raw.decode("utf-8", errors="replace")
    if _PRIVATE_KEY.search(text):
        raise BundleError(
            f"{source} contains a private key; a bundle carries certificates only and a key must "
            "never leave its site. Refused: revoke and re-issue that key, then export again."
        )
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BundleError(f"{source} is not JSON: {exc}") from None
    if not isinstance(doc, dict) or set(doc) != {"bundle", "signer", "signature"}:
        raise BundleError(f"{source} must be an object with exactly: bundle, signer, signature")
    try:
        signature = base64.b64decode(str(doc["signature"]), validate=True)
    except ValueError:
        raise BundleError(f"{source}: signature is not base64") from None
    signed = SignedBundle(SiteBundle(doc["bundle"]), str(doc["signer"]), signature)
    check_body(doc["bundle"], source)
    verify(signed, source)
    return signed


def verify(signed: SignedBundle, source: str = "bundle") -> None:
    """The signer is an admin of the bundle's own CA and signed exactly this body."""
    ca = certificate(signed.bundle.ca_cert, f"{source}: caCert")
    signer = certificate(signed.signer_cert, f"{source}: signer")
    try:
        signer.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise BundleError(f"{source}: the signer's certificate was not issued by the bundle's CA") from None
    ous = [str(a.value) for a in signer.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATIONAL_UNIT_NAME)]
    if "admin" not in ous:
        raise BundleError(f"{source}: signed by {_cn(signer)}, who is not an admin (OU {ous}) of the org")
    key = signer.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise BundleError(f"{source}: the signer's key is not an ECDSA key")
    try:
        key.verify(signed.signature, signed.bundle.canonical(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise BundleError(
            f"{source}: bad signature: the bundle was changed after {_cn(signer)} signed it"
        ) from None


def _cn(cert: x509.Certificate) -> str:
    cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(cn[0].value) if cn else "?"


def certificate(pem: Any, what: str) -> x509.Certificate:
    if not isinstance(pem, str) or pem.count("-----BEGIN CERTIFICATE-----") != 1:
        raise BundleError(f"{what} must be exactly one PEM certificate")
    try:
        return x509.load_pem_x509_certificate(pem.encode())
    except ValueError as exc:
        raise BundleError(f"{what} is not a valid certificate: {exc}") from None


def check_body(body: Any, source: str = "bundle") -> None:
    """Exactly the known fields, each of the right form; certificates parse and chain."""
    if not isinstance(body, dict) or set(body) != BODY_KEYS:
        got = sorted(body) if isinstance(body, dict) else type(body).__name__
        raise BundleError(f"{source}: bundle fields are {got}; expected exactly {sorted(BODY_KEYS)}")
    if body["format"] != FORMAT:
        raise BundleError(f"{source}: format is {body['format']!r}; this fabricml reads {FORMAT!r}")
    _match(body["name"], _NAME, f"{source}: name", "lowercase letters, digits and '-'")
    _match(body["mspId"], _MSP_ID, f"{source}: mspId", "a letter, then letters, digits, '.', '-'")
    ca = _ca_certificate(body["caCert"], f"{source}: caCert")
    tls_ca = _ca_certificate(body["tlsCaCert"], f"{source}: tlsCaCert")
    if ca.public_key() == tls_ca.public_key():
        raise BundleError(f"{source}: the TLS CA must be a different CA from the enrollment CA")
    if not isinstance(body["nodeOUs"], str) or "NodeOUs:" not in body["nodeOUs"]:
        raise BundleError(f"{source}: nodeOUs must be the MSP's config.yaml text with NodeOUs")
    peer = body["peer"]
    if not isinstance(peer, dict) or set(peer) != {"name", "address"}:
        raise BundleError(f"{source}: peer must be {{name, address}}")
    _address(peer["address"], f"{source}: peer.address")
    _orderers(body["orderers"], ca, tls_ca, source)
    for key in ("ca", "artifactStore", "adminApi"):
        if not isinstance(body[key], str) or not body[key].startswith("https://"):
            raise BundleError(f"{source}: {key} must be an https:// URL")
        _address(body[key].removeprefix("https://").split("/", 1)[0], f"{source}: {key}")


def _orderers(orderers: Any, ca: x509.Certificate, tls_ca: x509.Certificate, source: str) -> None:
    if not isinstance(orderers, list) or len(orderers) > MAX_ORDERERS_PER_ORG:
        raise BundleError(f"{source}: orderers must be a list of at most {MAX_ORDERERS_PER_ORG}")
    for i, o in enumerate(orderers):
        where = f"{source}: orderers[{i}]"
        if not isinstance(o, dict) or set(o) != ORDERER_KEYS:
            raise BundleError(f"{where} must have exactly {sorted(ORDERER_KEYS)}")
        _address(o["address"], f"{where}.address")
        for key, issuer in (("tlsCert", tls_ca), ("identityCert", ca)):
            cert = certificate(o[key], f"{where}.{key}")
            try:
                cert.verify_directly_issued_by(issuer)
            except (ValueError, TypeError, InvalidSignature):
                raise BundleError(f"{where}.{key} was not issued by the bundle's own CA") from None


def _ca_certificate(pem: Any, what: str) -> x509.Certificate:
    cert = certificate(pem, what)
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise BundleError(f"{what} is not a CA certificate")
    return cert


def _match(value: Any, pattern: re.Pattern[str], what: str, allowed: str) -> None:
    if not isinstance(value, str) or not pattern.match(value):
        raise BundleError(f"{what} is {value!r}; allowed: {allowed}")


def _address(value: Any, what: str) -> None:
    host, _, port = str(value).rpartition(":")
    try:
        check_host(host, what)
    except TopologyError as exc:
        raise BundleError(str(exc)) from None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise BundleError(f"{what} is {value!r}; allowed: host:port with a port from 1 to 65535")
