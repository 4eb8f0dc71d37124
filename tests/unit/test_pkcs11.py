"""The PKCS#11 signer against a real SoftHSM2 token: keys made and used inside it, low-S DER
signatures, PIN sources, refusals, CSRs and profile identities that name a token."""

from __future__ import annotations

import datetime
import json
import secrets
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11
from pkcs11.types import SignMixin
from pkcs11.util.ec import encode_named_curve_parameters

from fabricml.gateway.pkcs11 import (
    TokenError,
    TokenKey,
    TokenSigner,
    _TokenPrivateKey,
    generate_token_key,
    low_s_der,
    open_session,
    pkcs11_signer,
    save_token_identity,
    token_csr,
)
from fabricml.gateway.profile import ConnectionProfile
from fabricml.gateway.signing import sha256
from tests.softhsm import LIBRARY, PIN_ENV, SoftToken, soft_token

ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
ECDSA_SHA256 = ec.ECDSA(Prehashed(hashes.SHA256()))


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory) -> SoftToken:
    return soft_token(tmp_path_factory)


@pytest.fixture(scope="module")
def admin(token: SoftToken) -> tuple[TokenKey, ec.EllipticCurvePublicKey]:
    ref = token.key(f"unit-admin-{secrets.token_hex(3)}")
    return ref, generate_token_key(ref)


def _label() -> str:
    return f"unit-{secrets.token_hex(4)}"


def test_a_key_made_in_the_token_signs_low_s_der_that_its_public_key_verifies(
    admin: tuple[TokenKey, ec.EllipticCurvePublicKey],
) -> None:
    ref, public = admin
    with TokenSigner(ref) as signer:
        for i in range(24):
            digest = sha256(f"proposal {i}".encode())
            signature = signer(digest)
            public.verify(signature, digest, ECDSA_SHA256)
            _, s = decode_dss_signature(signature)
            assert 0 < s <= ORDER // 2


def test_a_high_s_signature_from_the_token_becomes_the_low_s_one() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    digest = sha256(b"envelope")
    r, s = decode_dss_signature(key.sign(digest, ECDSA_SHA256))
    high = s if s > ORDER // 2 else ORDER - s
    raw = r.to_bytes(32, "big") + high.to_bytes(32, "big")
    normalised = low_s_der(raw)
    assert decode_dss_signature(normalised) == (r, ORDER - high)
    key.public_key().verify(normalised, digest, ECDSA_SHA256)
    with pytest.raises(TokenError, match="64 bytes, got 63"):
        low_s_der(raw[:63])


def test_the_private_key_never_leaves_the_token(admin: tuple[TokenKey, ec.EllipticCurvePublicKey]) -> None:
    ref, _ = admin
    with open_session(ref) as session:
        private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=ref.key_label)
        assert private[Attribute.SENSITIVE] is True and private[Attribute.EXTRACTABLE] is False
        assert private[Attribute.NEVER_EXTRACTABLE] is True and private[Attribute.TOKEN] is True
        with pytest.raises(p11.AttributeSensitive):
            private[Attribute.VALUE]
    with TokenSigner(ref) as signer:
        adapter = _TokenPrivateKey(signer)
        for export in (adapter.private_numbers, adapter.private_bytes, adapter.exchange):
            with pytest.raises(TokenError, match="stays in the token"):
                export()


def test_without_a_key_id_the_key_gets_fabrics_ski_and_is_found_by_it(token: SoftToken) -> None:
    ref = token.key(_label())
    public = generate_token_key(ref)
    ski = sha256(public.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint))
    by_id = TokenKey(LIBRARY, token.label, key_id=ski, pin_env=PIN_ENV)
    with TokenSigner(by_id) as signer:
        digest = sha256(b"by id")
        public.verify(signer(digest), digest, ECDSA_SHA256)
        assert signer.public_key() == public


def test_a_second_key_under_a_label_in_use_is_refused(
    admin: tuple[TokenKey, ec.EllipticCurvePublicKey],
) -> None:
    ref, public = admin
    with pytest.raises(TokenError, match="already holds a key with label"):
        generate_token_key(ref)
    with TokenSigner(ref) as signer:
        assert signer.public_key() == public


def test_a_csr_made_in_the_token_names_the_enrollment_id_and_the_token_key(
    admin: tuple[TokenKey, ec.EllipticCurvePublicKey],
) -> None:
    ref, public = admin
    with TokenSigner(ref) as signer:
        csr = x509.load_pem_x509_csr(token_csr(signer, "hsmadmin"))
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "hsmadmin"
    assert csr.public_key() == public


def test_the_signer_serves_several_threads_at_once(admin: tuple[TokenKey, ec.EllipticCurvePublicKey]) -> None:
    ref, public = admin
    failures: list[BaseException] = []
    with TokenSigner(ref) as signer:

        def sign_many(n: int) -> None:
            try:
                for i in range(10):
                    digest = sha256(f"{n}/{i}".encode())
                    public.verify(signer(digest), digest, ECDSA_SHA256)
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=sign_many, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert failures == []


def test_only_32_byte_digests_are_signed(admin: tuple[TokenKey, ec.EllipticCurvePublicKey]) -> None:
    with TokenSigner(admin[0]) as signer, pytest.raises(TokenError, match="32-byte SHA-256 digests, got 5"):
        signer(b"short")


def test_the_pin_may_come_from_a_file_that_only_its_owner_reads(
    token: SoftToken, admin: tuple[TokenKey, ec.EllipticCurvePublicKey], tmp_path: Path
) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text(token.pin + "\n")
    pin_file.chmod(0o600)
    ref = TokenKey(LIBRARY, token.label, key_label=admin[0].key_label, pin_file=pin_file)
    with TokenSigner(ref) as signer:
        digest = sha256(b"from a file")
        admin[1].verify(signer(digest), digest, ECDSA_SHA256)
    pin_file.chmod(0o644)
    with pytest.raises(TokenError, match="open to other users \\(mode 644\\); chmod 600") as refused:
        TokenSigner(ref)
    assert token.pin not in str(refused.value)


@pytest.mark.parametrize("logged_in", [False, True])
def test_a_wrong_pin_is_refused_without_being_shown(
    token: SoftToken,
    admin: tuple[TokenKey, ec.EllipticCurvePublicKey],
    monkeypatch: pytest.MonkeyPatch,
    logged_in: bool,
) -> None:
    """Also while another session of this process is logged in (PKCS#11 logins are per process)."""
    held = TokenSigner(admin[0]) if logged_in else None
    wrong = "0" * len(token.pin)
    monkeypatch.setenv("WRONG_PIN", wrong)
    ref = TokenKey(LIBRARY, token.label, key_label=admin[0].key_label, pin_env="WRONG_PIN")
    try:
        with pytest.raises(TokenError, match=f"token '{token.label}' refused the PIN from \\$WRONG_PIN") as e:
            TokenSigner(ref)
    finally:
        if held:
            held.close()
    assert wrong not in str(e.value) and token.pin not in str(e.value)
    assert e.value.__cause__ is None and e.value.__suppress_context__


def test_an_unset_pin_variable_is_named(
    token: SoftToken, admin: tuple[TokenKey, ec.EllipticCurvePublicKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_SUCH_PIN", raising=False)
    ref = TokenKey(LIBRARY, token.label, key_label=admin[0].key_label, pin_env="NO_SUCH_PIN")
    with pytest.raises(TokenError, match="comes from \\$NO_SUCH_PIN, which is unset"):
        pkcs11_signer(ref)


def test_a_missing_module_token_or_key_is_refused_saying_what_is_there(token: SoftToken) -> None:
    with pytest.raises(TokenError, match=r"no PKCS#11 module at /nonexistent/lib\.so"):
        TokenSigner(TokenKey(Path("/nonexistent/lib.so"), token.label, key_label="k", pin_env=PIN_ENV))
    with pytest.raises(TokenError, match=f"no token labelled 'nope'; present: .*{token.label}"):
        TokenSigner(TokenKey(LIBRARY, "nope", key_label="k", pin_env=PIN_ENV))
    with pytest.raises(TokenError, match=f"'{token.label}' holds no private key with label 'absent'"):
        TokenSigner(token.key("absent"))


def test_a_key_that_is_not_a_signing_p256_key_is_refused(token: SoftToken) -> None:
    rsa, p384, no_sign = _label(), _label(), _label()
    with open_session(token.key(rsa), rw=True) as session:
        session.generate_keypair(KeyType.RSA, 2048, store=True, label=rsa)
        curve = encode_named_curve_parameters("secp384r1")
        params = session.create_domain_parameters(KeyType.EC, {Attribute.EC_PARAMS: curve}, local=True)
        params.generate_keypair(store=True, label=p384)
        p256 = encode_named_curve_parameters("secp256r1")
        params = session.create_domain_parameters(KeyType.EC, {Attribute.EC_PARAMS: p256}, local=True)
        params.generate_keypair(store=True, label=no_sign, private_template={Attribute.SIGN: False})
    for label in (rsa, p384):
        with pytest.raises(TokenError, match=f"key with label '{label}' .* is not ECDSA P-256"):
            TokenSigner(token.key(label))
    with pytest.raises(TokenError, match="may not sign \\(CKA_SIGN\\)"):
        TokenSigner(token.key(no_sign))


@pytest.mark.parametrize(
    ("entry", "refusal"),
    [
        ({"library": str(LIBRARY), "tokenLabel": "t", "keyLabel": "k"}, "exactly one PIN source"),
        (
            {"library": str(LIBRARY), "tokenLabel": "t", "keyLabel": "k", "pinEnv": "P", "pinFile": "/p"},
            "exactly one PIN source",
        ),
        ({"library": str(LIBRARY), "tokenLabel": "t", "pinEnv": "P"}, "needs a key label \\(keyLabel\\)"),
        ({"library": str(LIBRARY), "keyLabel": "k", "pinEnv": "P"}, "needs the token's label"),
        ({"tokenLabel": "t", "keyLabel": "k", "pinEnv": "P"}, "needs the PKCS#11 module's path"),
        ({"library": str(LIBRARY), "tokenLabel": "t", "keyId": "zz", "pinEnv": "P"}, "keyId must be hex"),
        ({"library": str(LIBRARY), "tokenLabel": "t", "keyLabel": "k", "pin": "1234"}, "got pin"),
        ({"library": str(LIBRARY), "tokenLabel": "t", "keyLabel": 7, "pinEnv": "P"}, "not a string"),
    ],
)
def test_a_malformed_pkcs11_profile_entry_is_refused(entry: dict[str, object], refusal: str) -> None:
    with pytest.raises(TokenError, match=refusal):
        TokenKey.from_profile(entry)


def test_a_token_key_round_trips_through_its_profile_entry_which_holds_no_pin(token: SoftToken) -> None:
    ref = TokenKey(LIBRARY, token.label, key_label="k", key_id=b"\x01\x02", pin_env=PIN_ENV)
    entry = ref.to_profile()
    assert TokenKey.from_profile(entry) == ref
    assert token.pin not in json.dumps(entry) and token.pin not in repr(ref)


def _certificate_for(public: ec.EllipticCurvePublicKey, name: str) -> bytes:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")])
    builder = x509.CertificateBuilder(subject, issuer, public, 1, now, now + datetime.timedelta(days=1))
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(Encoding.PEM)


def test_a_profile_identity_that_names_a_token_signs_in_it(
    admin: tuple[TokenKey, ec.EllipticCurvePublicKey], tmp_path: Path
) -> None:
    ref, public = admin
    listed = tmp_path / "listed"
    save_token_identity(listed, _certificate_for(public, "listed"), ref)
    enrolled = save_token_identity(tmp_path / "ids" / "hsm", _certificate_for(public, "hsm"), ref)
    raw = {
        "client": {"organization": "org1"},
        "organizations": {"org1": {"mspid": "Org1MSP"}},
        "identities": {"listed": {"mspDir": str(listed / "msp"), "pkcs11": ref.to_profile()}},
        "identitiesDir": str(tmp_path / "ids"),
    }
    profile = ConnectionProfile(tmp_path / "org1.json", raw)
    assert profile.identities() == ["hsm", "listed"]
    assert not (enrolled / "msp" / "keystore").exists() and enrolled.stat().st_mode & 0o777 == 0o700
    for name in ("listed", "hsm"):
        identity, signer, hash_ = profile.identity(name)
        assert isinstance(signer, TokenSigner)
        try:
            digest = hash_(b"a proposal")
            certified = x509.load_pem_x509_certificate(identity.credentials).public_key()
            assert isinstance(certified, ec.EllipticCurvePublicKey)
            certified.verify(signer(digest), digest, ECDSA_SHA256)
        finally:
            signer.close()
        assert identity.msp_id == "Org1MSP"


def test_a_token_signer_stops_signing_once_closed(admin: tuple[TokenKey, ec.EllipticCurvePublicKey]) -> None:
    signer = TokenSigner(admin[0])
    signer.close()
    with pytest.raises(p11.PKCS11Error):
        signer(sha256(b"after close"))


def test_the_token_signs_with_plain_ecdsa_on_the_digest(
    admin: tuple[TokenKey, ec.EllipticCurvePublicKey],
) -> None:
    """CKM_ECDSA signs the digest it is given: what Fabric verifies is ECDSA over SHA-256 of the bytes."""
    ref, public = admin
    with open_session(ref) as session:
        private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=ref.key_label)
        assert isinstance(private, SignMixin)
        raw = private.sign(sha256(b"message"), mechanism=Mechanism.ECDSA)
    public.verify(low_s_der(raw), b"message", ec.ECDSA(hashes.SHA256()))
