"""An org admin whose key lives in SoftHSM: enrolled at org1's real Fabric CA from a CSR signed in
the token, it votes a token mint, and the committed block names the token-held identity."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from fabric_protos.common import common_pb2
from fabric_protos.msp import identities_pb2

from fabricml.gateway import EvaluateError, sync
from fabricml.gateway.pkcs11 import (
    CAEndpoint,
    EnrollmentError,
    TokenKey,
    TokenSigner,
    enroll_token_key,
    generate_token_key,
    save_token_identity,
)
from fabricml.gateway.profile import ConnectionProfile
from fabricml.network.identities import CertificateAuthority, IdentitySpec
from fabricml.network.network import Network
from tests.conftest import fabricml, network_options
from tests.softhsm import soft_token

pytestmark = pytest.mark.network
ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


@dataclass(frozen=True)
class TokenAdmin:
    name: str
    certificate: bytes
    public: ec.EllipticCurvePublicKey
    profile: ConnectionProfile


def _org1(network: Network) -> tuple[CertificateAuthority, ConnectionProfile, CAEndpoint]:
    org = network.topology.org("org1")
    profile = ConnectionProfile.load(network.layout.profile(org))
    entry = profile.raw["certificateAuthorities"][org.ca_name]
    endpoint = CAEndpoint(entry["url"], entry["caName"], Path(entry["tlsCACerts"]["path"]))
    return CertificateAuthority(network.binaries, network.layout, org), profile, endpoint


@pytest.fixture(scope="module")
def token_admin(network: Network, tmp_path_factory: pytest.TempPathFactory) -> TokenAdmin:
    """Register an admin at org1's CA, make its key in the token, enroll a CSR the token signed."""
    token = soft_token(tmp_path_factory)
    ca, profile, endpoint = _org1(network)
    name = f"hsmadmin{secrets.token_hex(3)}"
    secret = secrets.token_urlsafe(18)
    ca.register(IdentitySpec(name, "admin"), secret=secret)
    ref = token.key(name)
    public = generate_token_key(ref)
    with TokenSigner(ref) as signer:
        certificate = enroll_token_key(endpoint, name, secret, signer)
    save_token_identity(Path(profile.raw["identitiesDir"]) / name, certificate, ref)
    return TokenAdmin(name, certificate, public, profile)


@pytest.fixture
def admin_gateway(token_admin: TokenAdmin) -> Iterator[sync.Gateway]:
    identity, signer, hash_ = token_admin.profile.identity(token_admin.name)
    assert isinstance(signer, TokenSigner)
    with token_admin.profile.peer().sync_channel() as channel:
        yield sync.connect(channel, identity, signer, hash_)
    signer.close()


def _contract(gw: sync.Gateway, network: Network, name: str) -> sync.Contract:
    return gw.get_network(network.topology.channel).get_contract(network.topology.chaincode_name, name)


def _envelope(gw: sync.Gateway, network: Network, block_number: int, tx_id: str) -> common_pb2.Envelope:
    with gw.get_network(network.topology.channel).block_events(block_number) as blocks:
        block = next(iter(blocks))
    for raw in block.data.data:
        envelope = common_pb2.Envelope.FromString(raw)
        payload = common_pb2.Payload.FromString(envelope.payload)
        if common_pb2.ChannelHeader.FromString(payload.header.channel_header).tx_id == tx_id:
            return envelope
    raise AssertionError(f"block {block_number} has no transaction {tx_id}")


def test_the_ca_certifies_the_token_key_as_an_org1_admin(token_admin: TokenAdmin) -> None:
    cert = x509.load_pem_x509_certificate(token_admin.certificate)
    assert cert.public_key() == token_admin.public
    assert cert.subject.rfc4514_string().startswith(f"CN={token_admin.name},OU=admin")
    identity_dir = Path(token_admin.profile.raw["identitiesDir"]) / token_admin.name
    assert not (identity_dir / "msp" / "keystore").exists()
    assert token_admin.name in token_admin.profile.identities()


def test_a_token_held_admin_votes_a_mint_and_the_block_names_it(
    network: Network, admin_gateway: sync.Gateway, token_admin: TokenAdmin
) -> None:
    who = json.loads(_contract(admin_gateway, network, "Consortium").evaluate_transaction("WhoAmI"))
    assert who == {"mspId": "Org1MSP", "subject": token_admin.name, "nodeRole": "admin", "role": ""}
    tokens = _contract(admin_gateway, network, "Token")
    before = json.loads(tokens.evaluate_transaction("GetBalance", "Org2MSP"))["amount"]
    mint = f"hsm-{secrets.token_hex(4)}"
    result, commit = tokens.submit_async("VoteMint", mint, "Org2MSP", "5")
    status = commit.status()
    assert status.successful
    assert json.loads(result)["voters"] == ["Org1MSP"] and not json.loads(result)["minted"]
    # One vote of three mints nothing: supply and balances are unchanged.
    assert json.loads(tokens.evaluate_transaction("GetBalance", "Org2MSP"))["amount"] == before

    envelope = _envelope(admin_gateway, network, status.block_number, commit.transaction_id)
    header = common_pb2.Payload.FromString(envelope.payload).header
    creator = identities_pb2.SerializedIdentity.FromString(
        common_pb2.SignatureHeader.FromString(header.signature_header).creator
    )
    assert (creator.mspid, creator.id_bytes) == ("Org1MSP", token_admin.certificate)
    token_admin.public.verify(envelope.signature, envelope.payload, ec.ECDSA(hashes.SHA256()))
    assert decode_dss_signature(envelope.signature)[1] <= ORDER // 2


def test_the_cli_signs_with_the_token_identity(network: Network, token_admin: TokenAdmin) -> None:
    where = network_options(network)
    out = fabricml("tx", "evaluate", "Consortium:WhoAmI", "--identity", token_admin.name, *where).stdout
    assert json.loads(out)["subject"] == token_admin.name


def test_a_wrong_enrollment_secret_is_refused_by_the_ca_and_nothing_is_saved(
    network: Network, tmp_path_factory: pytest.TempPathFactory
) -> None:
    token = soft_token(tmp_path_factory)
    ca, profile, endpoint = _org1(network)
    name = f"hsmtrainer{secrets.token_hex(3)}"
    ca.register(IdentitySpec(name, "client", role="trainer"), secret=secrets.token_urlsafe(18))
    ref = token.key(name)
    generate_token_key(ref)
    wrong = secrets.token_urlsafe(18)
    with TokenSigner(ref) as signer, pytest.raises(EnrollmentError, match=f"refused to enroll '{name}'") as e:
        enroll_token_key(endpoint, name, wrong, signer)
    assert wrong not in str(e.value)
    assert not (Path(profile.raw["identitiesDir"]) / name).exists()


def test_a_token_key_cannot_pass_as_another_identitys_certificate(
    network: Network, token_admin: TokenAdmin, tmp_path: Path
) -> None:
    """An org that holds user1's certificate but not its key cannot sign as user1 with a token key."""
    user1_msp = Path(token_admin.profile.raw["identities"]["user1"]["mspDir"])
    token_file = Path(token_admin.profile.raw["identitiesDir"]) / token_admin.name / "pkcs11.json"
    ref = TokenKey.from_profile(json.loads(token_file.read_text()))
    forged = save_token_identity(
        tmp_path / "forged", next((user1_msp / "signcerts").glob("*.pem")).read_bytes(), ref
    )
    raw = json.loads(json.dumps(token_admin.profile.raw))
    raw["identities"]["forged"] = {"mspDir": str(forged / "msp"), "pkcs11": ref.to_profile()}
    identity, signer, hash_ = ConnectionProfile(token_admin.profile.path, raw).identity("forged")
    assert isinstance(signer, TokenSigner)
    try:
        with token_admin.profile.peer().sync_channel() as channel:
            gw = sync.connect(channel, identity, signer, hash_)
            with pytest.raises(EvaluateError) as refused:
                _contract(gw, network, "Consortium").evaluate_transaction("WhoAmI")
            assert "access denied" in str(refused.value)
    finally:
        signer.close()
