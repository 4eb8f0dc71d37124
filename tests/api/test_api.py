"""Each org's API on the real network: authentication, roles, resources and bad input."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from fabricml.network.network import Network
from tests.certs import issue

from .conftest import ApiClient, base_url, register_model, tls_context, unique

pytestmark = pytest.mark.network


def test_a_request_without_a_client_certificate_gets_401_everywhere(api: ApiClient) -> None:
    anonymous = api("org1", identity=None)
    for path in ("/api/v1/whoami", "/api/v1/models", "/", "/metrics", "/openapi.json", "/static/app.js"):
        resp = anonymous.get(path)
        assert resp.status_code == 401, (path, resp.text)
        assert "client certificate" in resp.json()["detail"]
    resp = anonymous.post("/api/v1/federation/tasks", content=b"{not json")
    assert resp.status_code == 401  # authentication comes before the body is even parsed


def test_admin_and_auditor_certificates_map_to_their_roles(api: ApiClient) -> None:
    me = api("org1", "admin").get("/api/v1/whoami").json()
    assert me == {
        "subject": "admin",
        "mspId": "Org1MSP",
        "role": "admin",
        "organization": "org1",
        "canWrite": True,
    }
    auditor = api("org2", "auditor").get("/api/v1/whoami").json()
    assert (auditor["role"], auditor["mspId"], auditor["canWrite"]) == ("auditor", "Org2MSP", False)


def test_identities_without_an_api_role_get_403(api: ApiClient) -> None:
    for identity in ("user1", "trainer", "inference"):
        resp = api("org1", identity).get("/api/v1/models")
        assert resp.status_code == 403, identity
        assert "no API role" in resp.json()["detail"]


def test_an_auditor_reads_and_verifies_but_cannot_write(api: ApiClient) -> None:
    name = unique("audited")
    assert register_model(api("org1"), name).status_code == 201
    auditor = api("org1", "auditor")
    assert auditor.get(f"/api/v1/models/{name}/1.0").status_code == 200
    verified = auditor.post(f"/api/v1/models/{name}/1.0/verify")
    assert verified.json()["ok"] is True, verified.text
    for method, path, body in (
        ("POST", f"/api/v1/models/{name}/1.0/approve", None),
        ("POST", f"/api/v1/models/{name}/1.0/revoke", {"reason": "no"}),
        ("POST", "/api/v1/identities", {"name": "sneaky"}),
        ("POST", "/api/v1/tokens/mint-votes", {"id": "m1", "recipient": "Org1MSP", "amount": 5}),
    ):
        resp = auditor.request(method, path, json=body)
        assert resp.status_code == 403, (path, resp.text)
        assert "read-only" in resp.json()["detail"]
    detail = api("org1").get(f"/api/v1/models/{name}/1.0").json()
    assert detail["record"]["approvals"] == [] and detail["record"]["status"] == "registered"


def test_another_orgs_admin_cannot_act_through_this_orgs_api(api: ApiClient) -> None:
    name = unique("foreign")
    assert register_model(api("org1"), name).status_code == 201
    intruder = api("org1", "admin", as_org="org2")
    resp = intruder.post(f"/api/v1/models/{name}/1.0/approve")
    assert resp.status_code == 403
    assert "acts for Org1MSP only" in resp.json()["detail"] and "Org2MSP" in resp.json()["detail"]
    # Headers claiming another identity change nothing.
    spoofed = api("org1", "auditor").post(
        f"/api/v1/models/{name}/1.0/approve",
        headers={"X-Forwarded-Client-Cert": "Subject=CN=admin", "X-Org": "Org1MSP", "X-Role": "admin"},
    )
    assert spoofed.status_code == 403
    assert api("org1").get(f"/api/v1/models/{name}/1.0").json()["record"]["approvals"] == []


def test_a_forged_admin_certificate_is_refused_during_the_tls_handshake(
    network: Network, tmp_path: Path
) -> None:
    cert, key = issue("admin", "admin").write(tmp_path / "forged.pem", tmp_path / "forged.key")
    ctx = tls_context(network, "org1", cert, key)
    with (
        httpx.Client(base_url=base_url(network, "org1"), verify=ctx) as forged,
        pytest.raises(httpx.TransportError),
    ):
        forged.get("/api/v1/whoami")


def test_register_approve_verify_and_audit_a_model(api: ApiClient) -> None:
    name = unique("credit")
    created = register_model(api("org1"), name, parents=[])
    assert created.status_code == 201, created.text
    record = created.json()
    assert (record["status"], record["registeredBy"]["mspId"], record["registeredBy"]["subject"]) == (
        "registered",
        "Org1MSP",
        "trainer",
    )
    first = api("org1").post(f"/api/v1/models/{name}/1.0/approve")
    assert first.status_code == 200 and [a["mspId"] for a in first.json()["approvals"]] == ["Org1MSP"]
    second = api("org2").post(f"/api/v1/models/{name}/1.0/approve")
    assert second.status_code == 200 and second.json()["status"] == "approved"
    detail = api("org3", "auditor").get(f"/api/v1/models/{name}/1.0").json()
    assert detail["deployability"]["deployable"] is True
    assert detail["deployability"]["approvals"] == 2
    history = api("org1", "auditor").get(f"/api/v1/models/{name}/1.0/history").json()
    assert [h["record"]["status"] for h in history][-1] == "approved" and len(history) == 3
    lineage = api("org1", "auditor").get(f"/api/v1/models/{name}/1.0/lineage").json()
    assert lineage["root"] == f"{name}@1.0"
    png = api("org1", "auditor").get(f"/api/v1/models/{name}/1.0/lineage.png")
    assert (
        png.headers["content-type"] == "image/png"
        and png.content.startswith(b"\x89PNG")
        and len(png.content) > 2000
    )
    # An org that never stored the files fetches them from org1's artifact store and checks them.
    verified = api("org3", "auditor").post(f"/api/v1/models/{name}/1.0/verify").json()
    assert verified["ok"] is True and verified["files"] == 2 and verified["problems"] == []
    report = api("org2", "auditor").get(f"/api/v1/models/{name}/1.0/audit-report")
    assert report.status_code == 200
    assert f'filename="audit-{name}-1.0.html"' in report.headers["content-disposition"]
    assert f"Audit report: {name}@1.0" in report.text and second.json()["approvals"][1]["txId"] in report.text
    listing = api("org1", "auditor").get("/api/v1/models", params={"name": name}).json()
    assert [m["name"] for m in listing["models"]] == [name]


def test_a_ledger_refusal_is_a_clear_409_with_the_transaction_id(api: ApiClient) -> None:
    name = unique("twice")
    assert register_model(api("org1"), name).status_code == 201
    first = api("org1").post(f"/api/v1/models/{name}/1.0/approve")
    assert first.status_code == 200
    again = api("org1").post(f"/api/v1/models/{name}/1.0/approve")  # an idempotent retry
    assert again.status_code == 200 and again.json()["approvals"] == first.json()["approvals"]
    duplicate = register_model(api("org1"), name)
    assert duplicate.status_code == 409
    body = duplicate.json()
    assert body["error"] == "LedgerError" and "already registered" in body["detail"]
    assert len(body["transactionId"]) == 64 and body["endorsers"]
    missing = api("org1", "auditor").get(f"/api/v1/models/{name}/9.9")
    assert missing.status_code == 404 and "is not registered" in missing.json()["detail"]


def test_malformed_wrong_typed_oversized_and_traversing_requests_get_4xx_and_store_nothing(
    api: ApiClient,
) -> None:
    admin = api("org1")
    task_id = unique("badtask")
    good = {
        "id": task_id,
        "initialModel": "x@1",
        "rounds": 1,
        "minParticipants": 2,
        "stake": 1,
        "rewardPerRound": 1,
        "commitSeconds": 60,
        "revealSeconds": 60,
        "aggregateSeconds": 60,
        "rule": "median",
    }
    cases = [
        admin.post(
            "/api/v1/federation/tasks", content=b'{"id": ', headers={"content-type": "application/json"}
        ),
        admin.post("/api/v1/federation/tasks", json={**good, "rounds": "many"}),
        admin.post("/api/v1/federation/tasks", json={**good, "rule": "trust-me"}),
        admin.post("/api/v1/federation/tasks", json={**good, "creator": "Org2MSP"}),
        admin.post("/api/v1/federation/tasks", json=[good]),
        admin.post("/api/v1/identities", json={"name": "../admin"}),
        admin.post("/api/v1/identities", json={"name": "ok-name", "type": "peer"}),
    ]
    for resp in cases:
        assert resp.status_code == 422, resp.text
    oversized = admin.post("/api/v1/federation/tasks", json={**good, "padding": "x" * 200_000})
    assert oversized.status_code == 413
    chunked = admin.post("/api/v1/federation/tasks", content=iter([b"x" * 40_000] * 3))
    assert chunked.status_code == 413
    for path in (
        "/api/v1/models/..%2F..%2Fetc/passwd",
        "/api/v1/models/../../etc/passwd",
        "/api/v1/models/%2e%2e/1.0",
        "/api/v1/federation/tasks/..%2Fx",
        "/static/..%2F..%2Fapp.py",
        "/api/v1/identities/..%2Fadmin/revoke",
    ):
        resp = admin.get(path) if "revoke" not in path else admin.post(path, json={})
        assert 400 <= resp.status_code < 500, (path, resp.status_code)
    assert admin.get(f"/api/v1/federation/tasks/{task_id}").status_code == 404
    name = unique("evil")
    bad_file = admin.post(
        "/api/v1/models",
        data={"metadata": json.dumps({"name": name, "version": "1"})},
        files=[("files", ("../escape.bin", b"data", "application/octet-stream"))],
    )
    assert bad_file.status_code == 422 and "file name" in bad_file.json()["detail"][0]["msg"]
    bad_meta = admin.post("/api/v1/models", data={"metadata": "{nope"}, files=[("files", ("w.bin", b"d"))])
    assert bad_meta.status_code == 422
    assert admin.get(f"/api/v1/models/{name}/1").status_code == 404


def test_a_cross_site_write_from_a_browser_is_refused(api: ApiClient) -> None:
    name = unique("csrf")
    assert register_model(api("org1"), name).status_code == 201
    resp = api("org1").post(f"/api/v1/models/{name}/1.0/approve", headers={"Origin": "https://evil.example"})
    assert resp.status_code == 403
    assert api("org1").get(f"/api/v1/models/{name}/1.0").json()["record"]["approvals"] == []


def test_an_identity_registered_enrolled_and_revoked_through_the_api(
    network: Network, api: ApiClient
) -> None:
    name = unique("aud").replace("-", "")[:20]
    created = api("org1").post("/api/v1/identities", json={"name": name, "role": "auditor"})
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    listed = api("org1", "auditor").get("/api/v1/identities").json()
    assert {"name": name, "role": "auditor"}.items() <= next(i for i in listed if i["name"] == name).items()
    enrolled = api("org1").post(f"/api/v1/identities/{name}/enroll", json={"secret": secret})
    assert enrolled.status_code == 200, enrolled.text
    assert "BEGIN CERTIFICATE" in enrolled.json()["certificate"] and "PRIVATE KEY" not in enrolled.text
    newcomer = api("org1", name)
    assert newcomer.get("/api/v1/whoami").json()["role"] == "auditor"
    assert api("org1").post(f"/api/v1/identities/{name}/enroll", json={"secret": "wrong"}).status_code in (
        400,
        409,
    )
    assert api("org1").post("/api/v1/identities/admin/revoke", json={}).status_code == 409
    revoked = api("org1").post(f"/api/v1/identities/{name}/revoke", json={"reason": "keycompromise"})
    assert revoked.status_code == 200, revoked.text
    resp = api("org1", name).get("/api/v1/whoami")
    assert resp.status_code == 401 and "revoked" in resp.json()["detail"]
    log = network.layout.log("api.org1").read_text()
    assert secret not in log and "PRIVATE KEY" not in log


def test_a_federated_task_is_created_joined_started_and_its_round_shown(
    network: Network, api: ApiClient
) -> None:
    mint = unique("mint")
    for org in ("org1", "org2", "org3"):
        msp = network.topology.org(org).msp_id
        for voter in ("org1", "org2"):
            vote = api(voter).post(
                "/api/v1/tokens/mint-votes", json={"id": f"{mint}-{org}", "recipient": msp, "amount": 1000}
            )
            assert vote.status_code == 200, vote.text
    name = unique("fedbase")
    assert register_model(api("org1"), name, version="0").status_code == 201
    task_id = unique("task")
    task = {
        "id": task_id,
        "initialModel": f"{name}@0",
        "rounds": 2,
        "minParticipants": 3,
        "stake": 100,
        "rewardPerRound": 30,
        "commitSeconds": 600,
        "revealSeconds": 600,
        "aggregateSeconds": 600,
        "rule": "median",
    }
    created = api("org1").post("/api/v1/federation/tasks", json=task)
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "enrolling" and created.json()["escrow"] == 60
    early = api("org1").post(f"/api/v1/federation/tasks/{task_id}/start")
    assert early.status_code == 409 and "0 of the 3 participants" in early.json()["detail"]
    for org in ("org1", "org2", "org3"):
        joined = api(org).post(f"/api/v1/federation/tasks/{task_id}/join")
        assert joined.status_code == 200, joined.text
    started = api("org2").post(f"/api/v1/federation/tasks/{task_id}/start").json()
    assert (started["status"], started["round"], started["phase"]) == ("running", 1, "COMMIT")
    rounds = api("org3", "auditor").get(f"/api/v1/federation/tasks/{task_id}/rounds").json()
    assert [(r["round"], r["state"], r["commitments"], r["result"]) for r in rounds] == [
        (1, "COMMIT", [], None)
    ]
    balances = {b["mspId"]: b for b in api("org1", "auditor").get("/api/v1/tokens/balances").json()}
    assert all(balances[m]["staked"] >= 100 for m in ("Org1MSP", "Org2MSP", "Org3MSP"))
    deadline = time.monotonic() + 30
    while task_id not in [t["id"] for t in api("org2", "auditor").get("/api/v1/federation/tasks").json()]:
        assert time.monotonic() < deadline, "the task never showed up in the listing"
        time.sleep(0.5)


def test_network_view_metrics_activity_and_openapi(network: Network, api: ApiClient) -> None:
    view = api("org2", "auditor").get("/api/v1/network").json()
    assert view["mspId"] == "Org2MSP" and view["healthy"] == view["total"] == 18
    assert {m["mspId"] for m in view["members"]} == {"Org1MSP", "Org2MSP", "Org3MSP"}
    peers = {n["organization"]: n["height"] for n in view["nodes"] if n["kind"] == "peer"}
    # Its own peer's height from the metrics its operator certificate opens; members' stay private.
    assert peers["org2"] and peers["org2"] > 5 and peers["org1"] is None and peers["org3"] is None
    assert view["chaincodeVersion"]
    metrics = api("org2", "auditor").get("/metrics").text
    assert 'fabricml_api_requests_total{method="GET",route="/api/v1/network",status="200"}' in metrics
    spec = api("org2", "auditor").get("/openapi.json").json()
    assert "/api/v1/models/{name}/{version}/approve" in spec["paths"]
    deadline = time.monotonic() + 30
    while not api("org2", "auditor").get("/api/v1/network/activity").json():
        assert time.monotonic() < deadline, "no ledger events indexed"
        time.sleep(0.5)
    event = api("org2", "auditor").get("/api/v1/network/activity", params={"limit": 1}).json()[0]
    assert event["block"] > 0 and len(event["transactionId"]) == 64


def test_a_client_that_sends_too_many_requests_gets_429_with_retry_after(api: ApiClient) -> None:
    client = api("org3", "auditor")
    statuses = [client.get("/api/v1/whoami") for _ in range(120)]
    limited = [r for r in statuses if r.status_code == 429]
    assert limited and int(limited[0].headers["retry-after"]) >= 1
    assert api("org3", "admin").get("/api/v1/whoami").status_code == 200  # other clients are not affected
    time.sleep(3)  # let the bucket refill for later tests
