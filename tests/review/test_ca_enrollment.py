"""Each org's Fabric CA as the bring-up configures it (review findings R5 and R12).

R5: with maxenrollments -1 the "one-time" secret the API hands out (and each bring-up
identity's secret) enrolled any number of keys. R12: the API held the CA's bootstrap
registrar (every hf.* right), so a compromised API host could issue peer, orderer and
intermediate-CA identities; its registrar may now register clients and admins only."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from fabricml.network.network import Network
from fabricml.network.topology import HOST

from .conftest import ca_client, enroll, msp_files, register_through_api, unique


def _failed(result: subprocess.CompletedProcess[str]) -> str:
    return (result.stderr.strip().splitlines() or ["?"])[-1]


def test_an_enrollment_secret_from_the_api_enrolls_only_once(network: Network, tmp_path: Path) -> None:
    name = unique("once")
    secret = register_through_api(network, "org1", name)
    first = enroll(network, "org1", name, secret, tmp_path / "first")
    assert first.returncode == 0, _failed(first)
    second = enroll(network, "org1", name, secret, tmp_path / "second")
    assert second.returncode != 0, "the same secret enrolled a second key for the identity"


@pytest.mark.parametrize("identity", ["trainer", "peer0", "admin"])
def test_a_bring_up_secret_enrolls_no_second_key(network: Network, tmp_path: Path, identity: str) -> None:
    home = network.layout.ca_home(network.topology.org("org1"))
    secret = json.loads((home / "secrets.json").read_text())[identity]
    again = enroll(network, "org1", identity, secret, tmp_path)
    assert again.returncode != 0, f"{identity}'s bring-up secret enrolled a second key"


def _as_api_registrar(network: Network, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A CA call with a copy of the registrar the API holds, as whoever took over the API host."""
    org = network.topology.org("org1")
    home = shutil.copytree(network.layout.ca_home(org) / "registrar", tmp_path / "stolen")
    return ca_client(network, "org1", "register", "-u", f"https://{HOST}:{org.ca_port}", *args, home=home)


@pytest.mark.parametrize(
    "what",
    [
        ("--id.type", "peer"),
        ("--id.type", "orderer"),
        ("--id.type", "client", "--id.attrs", "hf.IntermediateCA=true"),
        ("--id.type", "client", "--id.attrs", "hf.Registrar.Roles=*"),
    ],
    ids=["peer", "orderer", "intermediate-ca", "registrar"],
)
def test_the_apis_registrar_cannot_issue_node_or_ca_identities(
    network: Network, tmp_path: Path, what: tuple[str, ...]
) -> None:
    name = ("--id.name", unique("minted"), "--id.secret", "s3cret-x")
    result = _as_api_registrar(network, tmp_path, *name, *what)
    assert result.returncode != 0, f"the API's registrar registered {what}"


def test_an_ou_asked_for_in_the_csr_is_ignored(network: Network, tmp_path: Path) -> None:
    """Sound: a client identity cannot make itself an admin (NodeOU) through its CSR."""
    name = unique("ou")
    secret = register_through_api(network, "org1", name)
    result = enroll(network, "org1", name, secret, tmp_path, "--csr.names", "OU=admin")
    assert result.returncode == 0, _failed(result)
    cert = x509.load_pem_x509_certificate(msp_files(tmp_path)[0].read_bytes())
    units = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
    assert units == ["client"]


def test_an_outsider_cannot_lock_an_identity_out_of_enrollment(network: Network, tmp_path: Path) -> None:
    """R6: Fabric CA counted wrong secrets per identity, from anyone, and locked it after 10."""
    name = unique("locked")
    secret = register_through_api(network, "org1", name)
    for attempt in range(11):  # an outsider guessing; it knows the name only
        guess = enroll(network, "org1", name, f"guess-{attempt}", tmp_path / f"guess-{attempt}")
        assert guess.returncode != 0, "a wrong secret enrolled"
    owner = enroll(network, "org1", name, secret, tmp_path / "owner")
    assert owner.returncode == 0, f"the owner with the right secret was refused: {_failed(owner)}"
