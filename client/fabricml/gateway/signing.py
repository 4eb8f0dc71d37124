"""Signers: ECDSA P-256 with low-S signatures, Ed25519, and any callable you plug in."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed,
    decode_dss_signature,
    encode_dss_signature,
)

# A signer receives the digest of a message and returns the signature. An HSM or a
# remote signing service is plugged in by passing any such callable.
Signer = Callable[[bytes], bytes]
# A hash turns a message into the digest that is passed to the signer.
Hash = Callable[[bytes], bytes]

_CURVE_ORDER = {
    "secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "secp384r1": int(
        "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973", 16
    ),
}


def sha256(message: bytes) -> bytes:
    return hashlib.sha256(message).digest()


def identity_hash(message: bytes) -> bytes:
    """No hashing: for Ed25519, which signs the whole message."""
    return message


def ecdsa_signer(key: ec.EllipticCurvePrivateKey) -> Signer:
    """Sign SHA-256 digests; S is normalised to the lower half, as peers demand."""
    order = _CURVE_ORDER.get(key.curve.name)
    if order is None:
        raise ValueError(f"unsupported curve {key.curve.name}; use P-256 or P-384")
    algorithm = ec.ECDSA(Prehashed(hashes.SHA256()))

    def sign(digest: bytes) -> bytes:
        r, s = decode_dss_signature(key.sign(digest, algorithm))
        if s > order // 2:
            s = order - s
        return encode_dss_signature(r, s)

    return sign


def ed25519_signer(key: ed25519.Ed25519PrivateKey) -> Signer:
    """Sign whole messages; pair with `identity_hash`."""
    return key.sign


def signer_from_pem(pem: bytes) -> tuple[Signer, Hash]:
    """A signer and its matching hash for a PEM private key (ECDSA or Ed25519)."""
    key = serialization.load_pem_private_key(pem, password=None)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return ecdsa_signer(key), sha256
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return ed25519_signer(key), identity_hash
    raise ValueError(f"unsupported private key type {type(key).__name__}; use ECDSA or Ed25519")


def signer_from_msp(msp_dir: Path) -> tuple[Signer, Hash]:
    """The signer for the one private key that fabric-ca-client wrote to keystore/."""
    keys = sorted(p for p in (Path(msp_dir) / "keystore").iterdir() if p.is_file())
    if len(keys) != 1:
        raise ValueError(f"expected one private key in {msp_dir}/keystore, found {len(keys)}")
    return signer_from_pem(keys[0].read_bytes())
