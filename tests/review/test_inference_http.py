"""The inference service's HTTP API (review findings R10, R11); no network needed, the
service is built but never started, as its guards come before any model is used.

The body limit looks at Content-Length only, so a chunked body of any size is read whole;
and no route authenticates its caller: whoever reaches the port makes the org's inference
identity attest claims on the ledger and reads every receipt (input and output digests)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fabricml.attest.service import ServiceConfig, create_app


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps({"client": {"organization": "org1"}}))
    config = ServiceConfig(profile=profile, model="m@1", state_dir=tmp_path / "state", device="cpu")
    # Not entered as a context manager: the lifespan (ledger, model) never runs.
    yield TestClient(create_app(config), raise_server_exceptions=False)


def test_a_chunked_body_over_the_limit_is_refused_with_413(client: TestClient) -> None:
    row = b"[" + b",".join([b"0.0"] * 400_000) + b"]"  # one row: 1.6 MB, over max_body_bytes (1 MiB)

    def chunks() -> Iterator[bytes]:
        yield b'{"inputs": ['
        yield row
        yield b"]}"

    r = client.post("/v1/predict", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413, f"a 1.6 MB chunked body got {r.status_code}, so it was read whole"


def test_a_caller_without_credentials_cannot_make_the_service_attest_a_claim(client: TestClient) -> None:
    r = client.post("/v1/claims/someone-elses-claim", json={"inputs": [[0.0]]})
    assert r.status_code in (401, 403), f"an anonymous caller reached the claim route: {r.status_code}"
