"""The Fabric nodes' operations endpoints as our bring-up configures them (review finding R9).

Served as plain HTTP without client authentication, anyone who reached the port could
PUT /logspec: turn a peer's or orderer's logging to debug (the review measured 23 KB/s on
an idle peer) or to fatal (no trace of what happens next). They speak TLS now and take
only the org's operator certificate."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request

import pytest

from fabricml.network.network import Network
from fabricml.network.topology import HOST

from .conftest import client_context, operator_files, tls_files


def _ports(network: Network) -> dict[str, int]:
    org = network.topology.org("org1")
    return {org.peer_name: org.peer_operations_port, org.orderers[0].name: org.orderers[0].operations_port}


def _logspec(url: str, spec: str | None, ctx: ssl.SSLContext | None = None) -> int:
    data = None if spec is None else f'{{"spec":"{spec}"}}'.encode()
    request = urllib.request.Request(url, data=data, method="GET" if spec is None else "PUT")
    try:
        with urllib.request.urlopen(request, timeout=5, context=ctx) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, ConnectionError, ssl.SSLError):
        return 0  # refused: plain HTTP on a TLS port, or the handshake


def _caller(network: Network, caller: str) -> tuple[str, ssl.SSLContext | None]:
    """Ways in that are not the operator's: plain HTTP, TLS without a certificate, and TLS with
    the org's own peer key or another org's operator certificate."""
    if caller == "plain http":
        return "http", None
    files = {
        "the peer's TLS key": tls_files(network, "org1", "peer0"),
        "org2's operator": operator_files(network, "org2"),
    }
    return "https", client_context(network, "org1", files.get(caller))


@pytest.mark.parametrize("caller", ["plain http", "no certificate", "the peer's TLS key", "org2's operator"])
@pytest.mark.parametrize("node", [0, 1])
def test_nobody_but_the_operator_changes_a_nodes_log_level(network: Network, node: int, caller: str) -> None:
    name, port = list(_ports(network).items())[node]
    scheme, ctx = _caller(network, caller)
    status = _logspec(f"{scheme}://{HOST}:{port}/logspec", "fatal", ctx)
    if status == 204:  # put it back for the other tests
        _logspec(f"{scheme}://{HOST}:{port}/logspec", "info", ctx)
    assert status != 204, f"{caller} silenced {name}'s log through PUT /logspec"


def test_the_cas_operations_endpoint_has_no_log_level_to_change(network: Network) -> None:
    port = network.topology.org("org1").port(1)
    assert _logspec(f"http://{HOST}:{port}/logspec", "fatal") in (0, 404)


@pytest.mark.parametrize("node", [0, 1])
def test_the_operator_reads_a_nodes_log_level_and_metrics_others_its_health_only(
    network: Network, node: int
) -> None:
    name, port = list(_ports(network).items())[node]
    ctx = client_context(network, "org1", operator_files(network, "org1"))
    assert _logspec(f"https://{HOST}:{port}/logspec", None, ctx) == 200, name
    assert _logspec(f"https://{HOST}:{port}/metrics", None, ctx) == 200, name
    anyone = client_context(network, "org1", None)
    assert _logspec(f"https://{HOST}:{port}/metrics", None, anyone) in (0, 401, 403), name
    assert _logspec(f"https://{HOST}:{port}/healthz", None, anyone) == 200, name
