"""Identities whose P-256 key lives in a PKCS#11 token (an HSM, or SoftHSM): it signs there, never leaves."""

from __future__ import annotations

import base64
import hmac
import json
import os
import secrets
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pkcs11
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.utils import Buffer
from cryptography.x509.oid import NameOID
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

from .signing import _CURVE_ORDER, Hash, sha256

P256 = encode_named_curve_parameters("secp256r1")
_ORDER = _CURVE_ORDER["secp256r1"]
# Keyed digests of the PINs this process logged in with (never the PINs), per (module, token).
_PROCESS_KEY = secrets.token_bytes(32)
_LOGINS: dict[tuple[str, str], bytes] = {}
_LOGINS_LOCK = threading.Lock()
_PROFILE_KEYS = {"library", "tokenLabel", "keyLabel", "keyId", "pinEnv", "pinFile"}


class TokenError(ValueError):
    """The token, its key or its PIN source is missing, refused or unsuitable; never carries the PIN."""


class EnrollmentError(RuntimeError):
    """The Fabric CA did not issue a certificate for the token's key."""


@dataclass(frozen=True)
class TokenKey:
    """Where a key is: the PKCS#11 module, the token's label, the key's label and/or ID, the PIN's source.

    It names the PIN's source (an environment variable or a 0600 file), never the PIN itself.
    """

    library: Path
    token_label: str
    key_label: str = ""
    key_id: bytes = b""
    pin_env: str = ""
    pin_file: Path | None = None

    def __post_init__(self) -> None:
        if not self.token_label:
            raise TokenError("a token key needs the token's label (tokenLabel)")
        if not self.key_label and not self.key_id:
            raise TokenError(
                f"a key in token {self.token_label!r} needs a key label (keyLabel) or ID (keyId)"
            )
        if bool(self.pin_env) == (self.pin_file is not None):
            raise TokenError(
                f"token {self.token_label!r} needs exactly one PIN source: pinEnv (a variable) or pinFile"
            )

    @classmethod
    def from_profile(cls, entry: Mapping[str, Any]) -> TokenKey:
        """From a profile's `pkcs11` entry: library, tokenLabel, keyLabel/keyId (hex), pinEnv or pinFile."""
        unknown = set(entry) - _PROFILE_KEYS
        if unknown or not all(isinstance(v, str) for v in entry.values()):
            raise TokenError(
                f"a pkcs11 entry takes only strings for {', '.join(sorted(_PROFILE_KEYS))}; "
                f"got {', '.join(sorted(unknown)) or 'a value that is not a string'}"
            )
        if "library" not in entry:
            raise TokenError("a pkcs11 entry needs the PKCS#11 module's path (library)")
        try:
            key_id = bytes.fromhex(entry.get("keyId", ""))
        except ValueError:
            raise TokenError(f"keyId must be hex, got {entry['keyId']!r}") from None
        pin_file = entry.get("pinFile")
        return cls(
            library=Path(entry["library"]),
            token_label=entry.get("tokenLabel", ""),
            key_label=entry.get("keyLabel", ""),
            key_id=key_id,
            pin_env=entry.get("pinEnv", ""),
            pin_file=Path(pin_file) if pin_file else None,
        )

    def to_profile(self) -> dict[str, str]:
        entry = {"library": str(self.library), "tokenLabel": self.token_label}
        entry |= {"keyLabel": self.key_label} if self.key_label else {}
        entry |= {"keyId": self.key_id.hex()} if self.key_id else {}
        entry |= {"pinEnv": self.pin_env} if self.pin_env else {"pinFile": str(self.pin_file)}
        return entry

    def describe(self) -> str:
        parts = [f"label {self.key_label!r}"] if self.key_label else []
        parts += [f"ID {self.key_id.hex()}"] if self.key_id else []
        return " and ".join(parts)

    def pin_source(self) -> str:
        return f"${self.pin_env}" if self.pin_env else f"file {self.pin_file}"

    def read_pin(self) -> str:
        if self.pin_env:
            pin = os.environ.get(self.pin_env, "")
            if not pin:
                raise TokenError(
                    f"the PIN of token {self.token_label!r} comes from ${self.pin_env}, which is unset"
                )
            return pin
        assert self.pin_file is not None
        try:
            mode = self.pin_file.stat().st_mode
        except OSError as exc:
            raise TokenError(f"cannot read the PIN file {self.pin_file}: {exc.strerror}") from None
        if mode & 0o077:
            raise TokenError(
                f"PIN file {self.pin_file} is open to other users (mode {mode & 0o777:o}); chmod 600 it"
            )
        pin = self.pin_file.read_text().rstrip("\r\n")
        if not pin:
            raise TokenError(f"PIN file {self.pin_file} is empty")
        return pin


def _token(ref: TokenKey) -> pkcs11.Token:
    if not ref.library.is_file():
        raise TokenError(f"no PKCS#11 module at {ref.library} (SoftHSM: /usr/lib/softhsm/libsofthsm2.so)")
    try:
        library = pkcs11.lib(str(ref.library))
        return library.get_token(token_label=ref.token_label)
    except p11.NoSuchToken:
        labels = sorted(t.label for t in library.get_tokens() if t.label)
        raise TokenError(
            f"no token labelled {ref.token_label!r}; present: {', '.join(labels) or 'none'}"
        ) from None
    except p11.PKCS11Error as exc:
        raise TokenError(f"cannot use PKCS#11 module {ref.library}: {type(exc).__name__} {exc}") from None


def open_session(ref: TokenKey, rw: bool = False) -> pkcs11.Session:
    """A session logged in as the token's user with the PIN from its source."""
    token, pin = _token(ref), ref.read_pin()
    where = (str(ref.library), ref.token_label)
    seen = hmac.digest(_PROCESS_KEY, pin.encode(), "sha256")
    try:
        session = token.open(user_pin=pin, rw=rw)
    except p11.UserAlreadyLoggedIn:
        # PKCS#11 logs a whole process in, so the token checks no second PIN: compare with the first.
        with _LOGINS_LOCK:
            first = _LOGINS.get(where, seen)
        if not hmac.compare_digest(first, seen):
            raise TokenError(f"token {ref.token_label!r} refused the PIN from {ref.pin_source()}") from None
        return token.open(rw=rw)
    except (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange):
        raise TokenError(f"token {ref.token_label!r} refused the PIN from {ref.pin_source()}") from None
    except p11.PinLocked:
        raise TokenError(
            f"token {ref.token_label!r} has locked its user PIN; its security officer must reset it"
        ) from None
    with _LOGINS_LOCK:
        _LOGINS[where] = seen
    return session


def _template(ref: TokenKey, kind: ObjectClass) -> dict[Attribute, Any]:
    template: dict[Attribute, Any] = {Attribute.CLASS: kind}
    template |= {Attribute.LABEL: ref.key_label} if ref.key_label else {}
    return template | ({Attribute.ID: ref.key_id} if ref.key_id else {})


def _one(session: pkcs11.Session, ref: TokenKey, kind: ObjectClass) -> Any:
    found = list(session.get_objects(_template(ref, kind)))
    what = "private key" if kind == ObjectClass.PRIVATE_KEY else "public key"
    if not found:
        raise TokenError(f"token {ref.token_label!r} holds no {what} with {ref.describe()}")
    if len(found) > 1:
        raise TokenError(
            f"token {ref.token_label!r} holds {len(found)} {what}s with {ref.describe()}; add keyId"
        )
    return found[0]


def _public_key(public: Any) -> ec.EllipticCurvePublicKey:
    key = serialization.load_der_public_key(encode_ec_public_key(public))
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key


def low_s_der(raw: bytes) -> bytes:
    """PKCS#11's r||s as the DER signature Fabric accepts, S in the lower half (peers refuse high-S)."""
    if len(raw) != 64:
        raise TokenError(f"a P-256 signature from the token has 64 bytes, got {len(raw)}")
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    return encode_dss_signature(r, _ORDER - s if s > _ORDER // 2 else s)


class TokenSigner:
    """Signs SHA-256 digests inside the token with CKM_ECDSA; the private key is never read out."""

    def __init__(self, ref: TokenKey) -> None:
        self.ref = ref
        self._session = open_session(ref)
        self._lock = threading.Lock()  # one PKCS#11 session serves one call at a time
        try:
            self._key = _one(self._session, ref, ObjectClass.PRIVATE_KEY)
            if self._key.key_type != KeyType.EC or self._key[Attribute.EC_PARAMS] != P256:
                raise TokenError(f"the key with {ref.describe()} in {ref.token_label!r} is not ECDSA P-256")
            if not self._key[Attribute.SIGN]:
                raise TokenError(
                    f"the key with {ref.describe()} in {ref.token_label!r} may not sign (CKA_SIGN)"
                )
        except BaseException:
            self._session.close()
            raise

    def __call__(self, digest: bytes) -> bytes:
        if len(digest) != 32:
            raise TokenError(f"the token signs 32-byte SHA-256 digests, got {len(digest)} bytes")
        with self._lock:
            raw = self._key.sign(digest, mechanism=Mechanism.ECDSA)
        return low_s_der(raw)

    def public_key(self) -> ec.EllipticCurvePublicKey:
        with self._lock:
            return _public_key(_one(self._session, self.ref, ObjectClass.PUBLIC_KEY))

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> TokenSigner:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def pkcs11_signer(ref: TokenKey) -> tuple[TokenSigner, Hash]:
    """The signer and its hash for a key in a token, as `signer_from_msp` returns them for a file."""
    return TokenSigner(ref), sha256


def generate_token_key(ref: TokenKey) -> ec.EllipticCurvePublicKey:
    """A new P-256 key pair made inside the token: sensitive, not extractable, persistent.

    Without a key ID it gets Fabric's SKI (SHA-256 of the public point), so a `pkcs11`-built
    Fabric BCCSP finds the same key.
    """
    with open_session(ref, rw=True) as session:
        if list(session.get_objects(_template(ref, ObjectClass.PRIVATE_KEY))):
            raise TokenError(f"token {ref.token_label!r} already holds a key with {ref.describe()}")
        params = session.create_domain_parameters(KeyType.EC, {Attribute.EC_PARAMS: P256}, local=True)
        public, private = params.generate_keypair(
            store=True,
            label=ref.key_label or None,
            id=ref.key_id or None,
            public_template={Attribute.VERIFY: True},
            private_template={
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
                Attribute.PRIVATE: True,
                Attribute.SIGN: True,
            },
        )
        key = _public_key(public)
        if not ref.key_id:
            point = key.public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
            public[Attribute.ID] = private[Attribute.ID] = sha256(point)
        return key


class _TokenPrivateKey(ec.EllipticCurvePrivateKey):
    """Lets `cryptography` sign a CSR through the token; every way out of the token refuses."""

    def __init__(self, signer: TokenSigner) -> None:
        self._signer = signer

    def sign(self, data: Buffer, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        if not isinstance(getattr(signature_algorithm, "algorithm", None), hashes.SHA256):
            raise TokenError("the token key signs ECDSA with SHA-256 only")
        return self._signer(sha256(bytes(data)))

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._signer.public_key()

    @property
    def curve(self) -> ec.EllipticCurve:
        return ec.SECP256R1()

    @property
    def key_size(self) -> int:
        return 256

    def _stays(self, *_: object) -> NoReturn:
        raise TokenError("the private key stays in the token")

    exchange = private_numbers = private_bytes = _stays  # type: ignore[assignment]

    def __copy__(self) -> _TokenPrivateKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> _TokenPrivateKey:
        return self


def token_csr(signer: TokenSigner, enrollment_id: str) -> bytes:
    """A PEM CSR for the token's key, signed in the token; CN = the enrollment ID, as the CA demands."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, enrollment_id)])
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(name)
        .sign(_TokenPrivateKey(signer), hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class CAEndpoint:
    """An org's Fabric CA as its connection profile names it: URL, CA name, TLS root file."""

    url: str
    ca_name: str
    tls_root: Path


def enroll_token_key(ca: CAEndpoint, enrollment_id: str, secret: str, signer: TokenSigner) -> bytes:
    """Enroll the token's key through the CA's REST API (POST /api/v1/enroll, as fabric-ca-client does).

    Returns the PEM certificate, after checking that it certifies the token's public key.
    """
    body = {"certificate_request": token_csr(signer, enrollment_id).decode(), "caname": ca.ca_name}
    reply = _post(ca, "enroll", body, (enrollment_id, secret))
    try:
        certificate = base64.b64decode(reply["result"]["Cert"], validate=True)
        issued = x509.load_pem_x509_certificate(certificate)
    except (KeyError, TypeError, ValueError):
        raise EnrollmentError(
            f"{ca.ca_name} answered the enrollment of {enrollment_id!r} without a certificate"
        ) from None
    if issued.public_key() != signer.public_key():
        raise EnrollmentError(f"{ca.ca_name} returned a certificate for another key than the token's")
    return certificate


def _post(ca: CAEndpoint, endpoint: str, body: dict[str, str], login: tuple[str, str]) -> dict[str, Any]:
    """One call to the CA's REST API with basic authentication; its errors as one EnrollmentError."""
    basic = base64.b64encode(":".join(login).encode()).decode()
    request = urllib.request.Request(
        f"{ca.url.rstrip('/')}/api/v1/{endpoint}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Basic {basic}"},
        method="POST",
    )
    context = ssl.create_default_context(cafile=str(ca.tls_root))
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as response:
            return dict(json.load(response))
    except urllib.error.HTTPError as exc:
        try:
            errors = json.loads(exc.read()).get("errors") or []
        except ValueError:
            errors = []
        messages = "; ".join(str(e.get("message")) for e in errors) or f"HTTP {exc.code} {exc.reason}"
        raise EnrollmentError(f"{ca.ca_name} refused to {endpoint} {login[0]!r}: {messages}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise EnrollmentError(f"cannot reach {ca.ca_name} at {ca.url}: {exc}") from None


def save_token_identity(identity_dir: Path, certificate: bytes, ref: TokenKey) -> Path:
    """Write the identity as `ConnectionProfile.identity` finds it: msp/signcerts/cert.pem and pkcs11.json."""
    signcerts = identity_dir / "msp" / "signcerts"
    signcerts.mkdir(parents=True, exist_ok=True)
    identity_dir.chmod(0o700)
    (signcerts / "cert.pem").write_bytes(certificate)
    (identity_dir / "pkcs11.json").write_text(json.dumps(ref.to_profile(), indent=2, sort_keys=True))
    return identity_dir
