"""Schemathesis against our own OpenAPI schema, as org1's admin: no server errors, and every
response matches what the schema documents (status codes, content types, bodies, headers)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fabricml.network.network import Network
from fabricml.network.processes import port_in_use, wait_until
from tests.conftest import FABRICML, network_options

from .conftest import identity_files, tls_context

pytestmark = pytest.mark.network
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,"
    "response_headers_conformance"
)


@pytest.fixture
def fuzzable_api(network: Network, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A second org1 API process with a rate limit the fuzzer will not hit (so it tests the API,
    not the limiter); stopped after the test."""
    org = network.topology.org("org1")
    port = org.api_port + 1
    env = {**os.environ, "FABRICML_API_RATE_PER_SECOND": "100000", "FABRICML_API_RATE_BURST": "100000"}
    log = tmp_path / "api.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                *FABRICML,
                "api",
                "serve",
                "--org",
                "org1",
                "--port",
                str(port),
                *network_options(network),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        assert wait_until(lambda: port_in_use(port) or proc.poll() is not None, 60) and proc.poll() is None, (
            log.read_text()
        )
        yield f"https://127.0.0.1:{port}", log
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    network: Network, fuzzable_api: tuple[str, Path], tmp_path: Path
) -> None:
    url, log = fuzzable_api
    cert, key = identity_files(network, "org1", "admin")
    ca = network.layout.ca_cert(network.topology.org("org1"))
    with httpx.Client(verify=tls_context(network, "org1", cert, key)) as client:
        schema = client.get(f"{url}/openapi.json")
    assert schema.status_code == 200
    (tmp_path / "openapi.json").write_bytes(schema.content)
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "st"),
            "run",
            str(tmp_path / "openapi.json"),
            "--url",
            url,
            "--request-cert",
            str(cert),
            "--request-cert-key",
            str(key),
            "--tls-verify",
            str(ca),
            "--checks",
            CHECKS,
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "25",
            "--workers",
            "2",
            "--seed",
            "7",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    summary = result.stdout[result.stdout.find("SUMMARY") :]
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    tested = re.search(r"Tested: (\d+)", summary)
    operations = sum(len(methods) for methods in schema.json()["paths"].values())
    assert tested and int(tested.group(1)) == operations
    assert "unhandled error" not in log.read_text()
