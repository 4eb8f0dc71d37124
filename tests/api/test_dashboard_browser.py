"""The dashboard in Debian's headless Chromium (driven by Playwright, never a downloaded
browser), logged in with org-issued client certificates."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from fabricml.contracts import FederationClient
from fabricml.demo.admins import OrgAdmins
from fabricml.federation.round_models import model_name
from fabricml.network.network import Network
from tests.federation.settling import settle_once_seen

from .conftest import ApiClient, base_url, identity_files, register_model, unique

pytestmark = pytest.mark.network
os.environ["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"] = "1"


def system_chromium() -> str:
    """Debian's Chromium binary (the /usr/bin/chromium wrapper script is not what Playwright launches)."""
    for candidate in (
        "/usr/lib/chromium/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.fail("Debian's chromium is not installed; scripts/setup.sh installs it (apt-get install chromium)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=system_chromium(), args=["--no-sandbox"])
        yield b
        b.close()


Login = Callable[..., Page]


@pytest.fixture
def login(network: Network, browser: Browser) -> Iterator[Login]:
    """login(org, identity) -> a page whose browser presents that identity's certificate."""
    contexts: list[BrowserContext] = []

    def make(org: str, identity: str | None = "admin") -> Page:
        certs = []
        if identity:
            cert, key = identity_files(network, org, identity)
            certs = [{"origin": base_url(network, org), "certPath": str(cert), "keyPath": str(key)}]
        # The API's certificate comes from the org's own CA, which this browser does not know.
        ctx = browser.new_context(
            ignore_https_errors=True,
            client_certificates=certs,  # type: ignore[arg-type]
            viewport={"width": 1280, "height": 900},
        )
        contexts.append(ctx)
        return ctx.new_page()

    yield make
    for c in contexts:
        c.close()


def screenshot(page: Page, path: Path) -> None:
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000, f"{path} is suspiciously small"
    with Image.open(path) as img:
        colours = img.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 8, f"{path} is blank"


def _finalize_round_one(network: Network, task_id: str) -> str:
    """Round 1 of a task of org1's and org2's trainers to an agreed aggregate (as their
    agents would: commit, post, settle); its digest."""
    aggregate = hashlib.sha256(f"{task_id} aggregate 1".encode()).hexdigest()
    scores = {f"{network.topology.org(o).msp_id}/trainer": 500 for o in ("org1", "org2")}
    with OrgAdmins.open(network) as c:
        for org in ("org1", "org2"):
            update = hashlib.sha256(f"{task_id} {org} 1".encode()).hexdigest()
            c.client(org, "trainer", FederationClient).commit(task_id, 1, update, 50, f"https://x/{update}")
        for org in ("org1", "org2"):
            c.client(org, "admin", FederationClient).post_aggregate(task_id, 1, aggregate, scores, [])
        settled = settle_once_seen(c.client("org2", "admin", FederationClient), task_id, 1)
        assert settled.status == "FINALIZED", settled
    return aggregate


def test_an_admin_logs_in_and_opens_every_dashboard_page(
    network: Network, api: ApiClient, login: Login, tmp_path: Path
) -> None:
    model = unique("dash")
    assert register_model(api("org1"), model, version="0").status_code == 201
    task_id = unique("dashtask")
    for org in ("org1", "org2"):
        msp = network.topology.org(org).msp_id
        for voter in ("org1", "org2"):
            api(voter).post(
                "/api/v1/tokens/mint-votes", json={"id": f"{task_id}-{org}", "recipient": msp, "amount": 500}
            )
    task = {
        "id": task_id,
        "initialModel": f"{model}@0",
        "rounds": 3,
        "minParticipants": 2,
        "stake": 50,
        "rewardPerRound": 10,
        "commitSeconds": 600,
        "revealSeconds": 600,
        "aggregateSeconds": 600,
        "rule": "fedavg",
    }
    assert api("org1").post("/api/v1/federation/tasks", json=task).status_code == 201
    for org in ("org1", "org2"):
        assert api(org).post(f"/api/v1/federation/tasks/{task_id}/join").status_code == 200
    assert api("org1").post(f"/api/v1/federation/tasks/{task_id}/start").status_code == 200
    aggregate = _finalize_round_one(network, task_id)
    # The round's global model, registered with its evaluation metrics by the first agreeing
    # org, feeds the chart.
    global_model = register_model(
        api("org1"),
        model_name(task_id),
        version="r1",
        round=f"{task_id}/1",
        aggregateDigest=aggregate,
        trainingOrgs=["Org2MSP"],
        metrics={"accuracy": 0.91, "loss": 0.27},
        parents=[f"{model}@0"],
    )
    assert global_model.status_code == 201, global_model.text

    page = login("org1", "admin")
    resp = page.goto(base_url(network, "org1") + "/")
    assert resp is not None and resp.status == 200
    assert page.locator("#who").inner_text() == "admin · admin"
    assert "18 of 18 nodes healthy" in page.locator("#health-summary").inner_text()
    screenshot(page, tmp_path / "network.png")

    page.click("text=Models")
    page.wait_for_url("**/models")
    assert page.locator("#models").get_by_text(f"{model_name(task_id)}@r1").count() == 1
    screenshot(page, tmp_path / "models.png")
    page.click(f"text={model_name(task_id)}@r1")
    assert page.locator("#model-status").inner_text() == "registered"
    page.wait_for_load_state("load")
    assert page.locator("#lineage").evaluate("img => img.naturalWidth") > 100
    screenshot(page, tmp_path / "model.png")

    page.click("text=Federated rounds")
    page.wait_for_url("**/federation")
    deadline = time.monotonic() + 30
    while page.locator("#tasks").get_by_text(task_id).count() == 0:  # the event index catches up
        assert time.monotonic() < deadline, "the task never appeared on the dashboard"
        time.sleep(1)
        page.reload()
    screenshot(page, tmp_path / "federation.png")
    page.click(f"text={task_id}")
    assert page.locator("#phase").inner_text() == "COMMIT"
    assert page.locator("#chart canvas").count() >= 1, "no accuracy/loss chart drawn"
    assert "accuracy" in page.locator("#chart").inner_text()
    screenshot(page, tmp_path / "task.png")

    page.click("text=Attestations")
    page.wait_for_url("**/attestations")
    assert page.locator("#services tr").count() == 4  # header + one inference service per org
    screenshot(page, tmp_path / "attestations.png")


def test_an_admin_of_another_org_approves_a_model_in_the_browser(
    network: Network, api: ApiClient, login: Login, tmp_path: Path
) -> None:
    model = unique("approveme")
    assert register_model(api("org1"), model).status_code == 201
    page = login("org2", "admin")
    page.goto(f"{base_url(network, 'org2')}/models/{model}/1.0")
    assert page.locator("#approvals").inner_text().count("Org2MSP") == 0
    page.click("#approve")
    expect(page.locator("#result")).to_contain_text("approved:", timeout=60_000)
    page.wait_for_load_state("load")
    page.locator("#approvals").get_by_text("Org2MSP").wait_for(timeout=30_000)
    screenshot(page, tmp_path / "approved.png")
    record = api("org1", "auditor").get(f"/api/v1/models/{model}/1.0").json()["record"]
    assert [a["mspId"] for a in record["approvals"]] == ["Org2MSP"]
    # Approving again could only be refused: the page says so instead of offering the button.
    page.reload()
    assert page.locator("#approve").count() == 0
    expect(page.locator("#approve-unavailable")).to_contain_text("Org2MSP already approved")


def test_a_revoked_version_offers_no_approve_button(network: Network, api: ApiClient, login: Login) -> None:
    model = unique("revoked")
    assert register_model(api("org1"), model).status_code == 201
    for org in ("org1", "org2"):  # one vote each: a majority of the three members revokes
        revoked = api(org).post(f"/api/v1/models/{model}/1.0/revoke", json={"reason": "leaked test data"})
        assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked", revoked.text
    page = login("org2", "admin")
    page.goto(f"{base_url(network, 'org2')}/models/{model}/1.0")
    assert page.locator("#approve").count() == 0
    expect(page.locator("#approve-unavailable")).to_contain_text("revoked")


def test_an_auditor_sees_no_approve_button_but_can_verify(
    network: Network, api: ApiClient, login: Login
) -> None:
    model = unique("readonly")
    assert register_model(api("org1"), model).status_code == 201
    page = login("org3", "auditor")
    page.goto(f"{base_url(network, 'org3')}/models/{model}/1.0")
    assert page.locator("#approve").count() == 0
    expect(page.locator("#approve-unavailable")).to_contain_text("only an admin of Org3MSP may approve")
    page.click("#verify")
    expect(page.locator("#result")).to_contain_text("verified:", timeout=60_000)


def test_a_browser_without_a_certificate_is_turned_away(network: Network, login: Login) -> None:
    page = login("org1", identity=None)
    resp = page.goto(base_url(network, "org1") + "/")
    assert resp is not None and resp.status == 401
    assert "client certificate" in page.content()
