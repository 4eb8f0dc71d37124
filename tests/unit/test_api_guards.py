"""The admin API's guards without a network: connection admission (R2), the revocation
check failing closed (R14) and the rate limit per org as well as per certificate (R15)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from fabricml.api.admission import ConnectionLimits, ConnectionTable, Slot
from fabricml.api.auth import AuthError, CertificateAuthenticator
from fabricml.api.middleware import GuardMiddleware, TokenBuckets
from fabricml.api.settings import ApiSettings
from tests.unit.certs import Authority, pem


class Dropped:
    def __init__(self) -> None:
        self.names: list[str] = []

    def slot(self, name: str) -> Slot:
        return Slot(lambda: self.names.append(name))


def test_the_oldest_unauthenticated_connection_is_dropped_first_per_address_and_in_all() -> None:
    dropped = Dropped()
    table = ConnectionTable(ConnectionLimits(unauthenticated=4, unauthenticated_per_address=2))
    for i in range(3):
        table.arrive(dropped.slot(f"a{i}"), "10.0.0.1")
    assert dropped.names == ["a0"]  # the address's oldest, not the newcomer
    for i in range(3):
        table.arrive(dropped.slot(f"b{i}"), f"10.0.1.{i}")
    assert dropped.names == ["a0", "a1"]  # over 4 in all: the oldest of everyone
    assert list(table.unauthenticated.values()) == ["10.0.0.1", "10.0.1.0", "10.0.1.1", "10.0.1.2"]


def test_authenticated_callers_have_their_own_slots_per_group_and_certificate() -> None:
    dropped = Dropped()
    table = ConnectionTable(
        ConnectionLimits(unauthenticated=2, unauthenticated_per_address=2, per_group=3, per_certificate=2)
    )
    outsiders = [dropped.slot(f"x{i}") for i in range(2)]
    for s in outsiders:
        table.arrive(s, "10.0.0.9")
    admin = dropped.slot("admin")
    table.arrive(admin, "10.0.0.9")  # while handshaking it is one of the unauthenticated ...
    table.authenticated(admin, "Org1MSP/admin", "admin-cert")  # ... then it has its own slot
    assert dropped.names == ["x0"] and admin not in table.unauthenticated
    mallory = [dropped.slot(f"m{i}") for i in range(3)]
    for s in mallory:
        table.arrive(s, "10.0.0.8")
        table.authenticated(s, "Org2MSP", "mallory")
    assert dropped.names == ["x0", "m0"]  # a certificate over its share loses its own oldest
    table.authenticated(dropped.slot("eve"), "Org2MSP", "eve")
    table.authenticated(dropped.slot("eve2"), "Org2MSP", "eve")
    # The group is full: its busiest certificate gives way, never another group's admin.
    assert "admin" not in dropped.names and table.groups["Org1MSP/admin"] == {admin: "admin-cert"}
    table.leave(admin)
    assert "Org1MSP/admin" not in table.groups


def test_a_bucket_that_has_refilled_is_forgotten_and_nothing_else() -> None:
    buckets = TokenBuckets(rate=1.0, burst=2)
    for i in range(10_001):
        buckets.take(f"idle{i}", now=0.0)
    buckets.take("busy", 0.0)
    buckets.take("busy", 0.0)
    buckets.take("new", now=1.5)  # over 10 000: prune; idle ones refilled to 2 by now, busy has 1.5
    assert len(buckets) == 2
    assert buckets.take("busy", 1.5) == 0.0 and buckets.take("busy", 1.5) > 0


@pytest.fixture
def orgs(tmp_path: Path) -> dict[str, Any]:
    org1, org2 = Authority("ca.org1"), Authority("ca.org2")
    crl = tmp_path / "crl.pem"
    crl.write_bytes(org1.crl())
    auth = CertificateAuthenticator("Org1MSP", org1.write(tmp_path), {"Org2MSP": org2.write(tmp_path)}, crl)
    return {"org1": org1, "org2": org2, "crl": crl, "auth": auth}


def test_a_missing_or_corrupt_revocation_list_keeps_the_last_good_one(orgs: dict[str, Any]) -> None:
    org1, auth, crl = orgs["org1"], orgs["auth"], orgs["crl"]
    admin, stolen = org1.issue("admin", "admin"), org1.issue("aud1", role="auditor")
    assert auth.authenticate(pem(stolen)).role == "auditor"
    crl.write_bytes(org1.crl(stolen))
    with pytest.raises(AuthError):
        auth.authenticate(pem(stolen))
    corrupt = b"-----BEGIN X509 CRL-----\nx\n"
    damages: list[Callable[[], object]] = [crl.unlink, lambda: crl.write_bytes(corrupt)]
    for damage in damages:
        damage()
        with pytest.raises(AuthError) as refused:
            auth.authenticate(pem(stolen))
        assert refused.value.status == 401 and "revoked" in refused.value.message
        assert auth.authenticate(pem(admin)).role == "admin"  # the rest still works


def test_without_any_usable_revocation_list_every_certificate_gets_503(tmp_path: Path) -> None:
    org1 = Authority("ca.org1")
    forged = Authority("ca.org1")  # same name, other key: its list is no list of org1's CA
    crl = tmp_path / "crl.pem"
    auth = CertificateAuthenticator("Org1MSP", org1.write(tmp_path / "ca"), {}, crl)
    for state in (None, b"not a crl", forged.crl()):
        if state is not None:
            crl.write_bytes(state)
        with pytest.raises(AuthError) as refused:
            auth.authenticate(pem(org1.issue("admin", "admin")))
        assert refused.value.status == 503 and str(crl) in refused.value.message
    crl.write_bytes(org1.crl())
    assert auth.authenticate(pem(org1.issue("admin", "admin"))).role == "admin"


def _request(
    auth: CertificateAuthenticator, cert_pem: str | None, address: str = "10.0.0.1"
) -> dict[str, Any]:
    tls = {"client_cert_chain": [cert_pem] if cert_pem else []}
    app = SimpleNamespace(state=SimpleNamespace(context=SimpleNamespace(authenticator=auth)))
    return {"type": "http", "extensions": {"tls": tls}, "client": (address, 1), "app": app}


def test_minting_certificates_buys_an_org_no_extra_budget(
    orgs: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = ApiSettings(org="org1", state_dir=tmp_path, rate_burst=10, group_rate_burst=25)
    guard = GuardMiddleware(lambda *a: None, settings)  # type: ignore[arg-type]
    monkeypatch.setattr("fabricml.api.middleware.time.monotonic", lambda: 100.0)  # no refill
    minted = [pem(orgs["org2"].issue(f"sybil{i}")) for i in range(8)]  # another org's, each refused 403
    passed = sum(guard._rate_limited(_request(orgs["auth"], c)) is None for c in minted for _ in range(10))
    assert passed == 25  # the org's budget, not 8 x 10
    # This org's admin and auditors keep theirs, and so does a caller without a certificate.
    admin, auditor = pem(orgs["org1"].issue("admin", "admin")), pem(orgs["org1"].issue("a", role="auditor"))
    assert guard._rate_limited(_request(orgs["auth"], admin)) is None
    assert guard._rate_limited(_request(orgs["auth"], auditor)) is None
    refused = guard._rate_limited(_request(orgs["auth"], minted[0]))
    assert refused is not None and refused[0] == 429
    assert orgs["auth"].group_of(admin) == "Org1MSP/admin" and orgs["auth"].group_of(minted[3]) == "Org2MSP"
