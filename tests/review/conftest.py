"""Helpers of the endpoint review's attack tests: identities' files, raw TLS, the CA client."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import uuid
from pathlib import Path

import httpx

from fabricml.network.network import Network
from fabricml.network.topology import HOST


def identity_files(network: Network, org: str, identity: str) -> tuple[Path, Path]:
    """(certificate, private key) of one of an org's identities, as enrolled at its CA."""
    msp = network.layout.msp(network.topology.org(org), identity)
    return msp / "signcerts" / "cert.pem", next((msp / "keystore").iterdir())


def tls_files(network: Network, org: str, identity: str) -> tuple[Path, Path]:
    """(certificate, private key) of one of an org's TLS identities, from its TLS CA."""
    tls = network.layout.tls(network.topology.org(org), identity)
    return tls / "server.crt", tls / "server.key"


def operator_files(network: Network, org: str) -> tuple[Path, Path]:
    """The org admin's operator client certificate (osnadmin, operations endpoints)."""
    site = network.layout.site(network.topology.org(org))
    return site.operator_cert, site.operator_key


def client_context(network: Network, org: str, files: tuple[Path, Path] | None) -> ssl.SSLContext:
    """TLS towards one of org's servers, with a client certificate when files are given."""
    ctx = ssl.create_default_context(cafile=str(network.layout.ca_cert(network.topology.org(org))))
    ctx.check_hostname = False
    if files is not None:
        ctx.load_cert_chain(*files)
    return ctx


def api_client(network: Network, org: str, files: tuple[Path, Path] | None) -> httpx.Client:
    url = f"https://{HOST}:{network.topology.org(org).api_port}"
    return httpx.Client(base_url=url, verify=client_context(network, org, files), timeout=60)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def ca_client(network: Network, org: str, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """fabric-ca-client against org's CA, as anyone who can reach it (no registrar rights)."""
    o = network.topology.org(org)
    argv = [str(network.binaries.path("fabric-ca-client")), *args, "--caname", o.ca_name,
            "--tls.certfiles", str(network.layout.ca_home(o) / "ca-cert.pem"), "-H", str(home)]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def enroll(
    network: Network, org: str, name: str, secret: str, home: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    url = f"https://{name}:{secret}@{HOST}:{network.topology.org(org).ca_port}"
    return ca_client(network, org, "enroll", "-u", url, "-M", str(home / "msp"), *extra, home=home)


def msp_files(home: Path) -> tuple[Path, Path]:
    msp = home / "msp"
    return msp / "signcerts" / "cert.pem", next((msp / "keystore").iterdir())


def register_through_api(network: Network, org: str, name: str, role: str = "trainer") -> str:
    """Register an identity with the org's API as its admin; returns the enrollment secret."""
    with api_client(network, org, identity_files(network, org, "admin")) as api:
        r = api.post("/api/v1/identities", json={"name": name, "role": role})
    assert r.status_code == 201, r.text
    return str(r.json()["secret"])


def copy_msp(network: Network, org: str, identity: str, home: Path) -> Path:
    """A copy of an identity's MSP folder, as an attacker who stole its key holds it."""
    shutil.copytree(network.layout.msp(network.topology.org(org), identity), home / "msp")
    return home
