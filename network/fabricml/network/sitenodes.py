"""The processes one site runs, in start order, from its directory alone."""

from __future__ import annotations

import os
import sys

from . import nodeconfig, operations
from .binaries import Binaries
from .chaincode import Deployment
from .identities import CA_ADMIN, CertificateAuthority
from .layout import SiteLayout
from .members import Members
from .supervisor import Node
from .topology import Organization


def base_env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}


def ca_node(org: Organization, site: SiteLayout, binaries: Binaries) -> Node:
    ca = CertificateAuthority(binaries, site, org)
    env = {**base_env(), **ca.server_env(ca.secret(CA_ADMIN, create=False))}
    health = f"http://{org.address(org.port(1))}/healthz"
    return Node(org.ca_name, "ca", org.name, ca.server_argv(), env, health)


def orderer_nodes(org: Organization, site: SiteLayout, binaries: Binaries) -> list[Node]:
    return [
        Node(
            o.name,
            "orderer",
            org.name,
            [str(binaries.path("orderer"))],
            {**base_env(), **nodeconfig.orderer_env(org, o, site)},
            operations.url(f"{o.host}:{o.operations_port}", "/healthz"),
            site.tls_ca_cert,
        )
        for o in org.orderers
    ]


def peer_node(org: Organization, site: SiteLayout, binaries: Binaries) -> Node:
    env = {**base_env(), **nodeconfig.peer_env(org, site)}
    builder_config = nodeconfig.builder_config_file(org, site)
    if builder_config.exists():
        env[nodeconfig.BUILDER_CONFIG_ENV] = builder_config.read_text()
    health = operations.url(org.address(org.peer_operations_port), "/healthz")
    argv = [str(binaries.path("peer")), "node", "start"]
    return Node(org.peer_name, "peer", org.name, argv, env, health, site.tls_ca_cert)


def chaincode_node(org: Organization, site: SiteLayout, deployment: Deployment) -> Node:
    env = {**base_env(), **nodeconfig.chaincode_env(org, site, deployment.package_id)}
    listen = (org.host, org.chaincode_port)
    return Node(org.chaincode_name, "chaincode", org.name, [deployment.binary], env, listen=listen)


def artifacts_node(org: Organization, site: SiteLayout) -> Node:
    """The org's artifact store, served to members over mutual TLS on the site's address."""
    tls = site.identity_tls("artifacts")
    argv = [
        sys.executable,
        "-m",
        "fabricml.registry.artifact_server",
        "--root",
        str(site.artifact_store),
        "--host",
        org.host,
        "--port",
        str(org.artifacts_port),
        "--cert",
        str(tls / "server.crt"),
        "--key",
        str(tls / "server.key"),
        "--own-ca",
        str(site.ca_cert),
    ]
    book = Members(site)
    for name in book.names():  # each CA's revocation list as the channel carries it (revocations.py)
        argv += ["--member-ca", str(book.ca_bundle(name)), "--crl", str(site.member_crl(name))]
    return Node(
        org.artifacts_name,
        "artifacts",
        org.name,
        argv,
        base_env(),
        listen=(org.host, org.artifacts_port),
    )


def revocations_node(org: Organization, site: SiteLayout) -> Node:
    """The follower that keeps every member's revocation list for the artifact store."""
    argv = [sys.executable, "-m", "fabricml.network.revocations", "--state-dir", str(site.root)]
    return Node(
        org.revocations_name, "revocations", org.name, argv, base_env(), ready_file=site.revocations_ready
    )


def api_node(org: Organization, site: SiteLayout) -> Node:
    """The org's admin API and dashboard, on the site's own address, reading the site alone."""
    argv = [sys.executable, "-m", "fabricml.api", "--org", org.name, "--state-dir", str(site.root)]
    env = {**base_env(), "FABRICML_API_HOST": org.host}
    return Node(org.api_name, "api", org.name, argv, env, listen=(org.host, org.api_port))


def nodes(
    org: Organization, site: SiteLayout, binaries: Binaries, deployment: Deployment | None
) -> list[Node]:
    """Every process the site has configured so far: the CA from `site init` on; orderers
    and peer once configured; chaincode once deployed; artifact store and API once joined."""
    out = [ca_node(org, site, binaries)]
    out += orderer_nodes(org, site, binaries)
    out.append(peer_node(org, site, binaries))
    if deployment is not None:
        out.append(chaincode_node(org, site, deployment))
    if site.profile(org.name).exists():
        out += [revocations_node(org, site), artifacts_node(org, site), api_node(org, site)]
    return out
