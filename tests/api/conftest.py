"""Clients of each org's API as its identities would be: mutual TLS with CA-issued certificates."""

from __future__ import annotations

import io
import json
import ssl
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from fabricml.network.network import Network

ApiClient = Callable[..., httpx.Client]


def identity_files(network: Network, org: str, identity: str) -> tuple[Path, Path]:
    """(certificate, private key) of one of an org's identities, as enrolled at its CA."""
    msp = network.layout.msp(network.topology.org(org), identity)
    return msp / "signcerts" / "cert.pem", next((msp / "keystore").iterdir())


def base_url(network: Network, org: str) -> str:
    return f"https://127.0.0.1:{network.topology.org(org).api_port}"


def tls_context(network: Network, org: str, cert: Path | None, key: Path | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(network.layout.ca_cert(network.topology.org(org))))
    if cert is not None and key is not None:
        ctx.load_cert_chain(cert, key)
    return ctx


@pytest.fixture
def api(network: Network) -> Iterator[ApiClient]:
    """api(org, identity) -> an httpx client of org's API authenticated as that identity
    (identity=None: no client certificate; as_org: whose identity, default the same org)."""
    clients: list[httpx.Client] = []

    def make(
        org: str, identity: str | None = "admin", as_org: str | None = None, **kw: object
    ) -> httpx.Client:
        files = identity_files(network, as_org or org, identity) if identity else (None, None)
        client = httpx.Client(
            base_url=base_url(network, org), verify=tls_context(network, org, *files), timeout=120
        )
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def register_model(client: httpx.Client, name: str, version: str = "1.0", **meta: object) -> httpx.Response:
    """Upload a two-file model through the API."""
    files = [
        (
            "files",
            ("weights.bin", io.BytesIO(f"weights of {name}@{version}".encode()), "application/octet-stream"),
        ),
        ("files", ("config.json", io.BytesIO(b'{"layers": 2}'), "application/json")),
    ]
    metadata = {"name": name, "version": version, "metrics": {"accuracy": 0.9}, **meta}
    return client.post("/api/v1/models", data={"metadata": json.dumps(metadata)}, files=files)
