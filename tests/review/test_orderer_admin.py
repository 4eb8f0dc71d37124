"""Who may use an orderer's admin endpoint (osnadmin, channel participation) (review finding R1).

The channel participation API authorizes by the TLS client certificate alone. With
ORDERER_ADMIN_TLS_CLIENTROOTCAS = the org's TLS CA, every TLS key of the org (peer,
chaincode server, artifact store, API) could list, join and remove the orderer's channels;
the review removed two orgs' orderers that way and the channel lost its Raft quorum. Only
the operator CA's certificate, held by the org admin alone, may. Listing is asked here: the
endpoint authorizes it exactly as it authorizes a removal."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from fabricml.network.network import Network
from fabricml.network.topology import HOST

from .conftest import client_context, identity_files, operator_files, tls_files

TLS_KEYS = ("admin", "peer0", "chaincode", "artifacts", "api")


def _list_channels(network: Network, org: str, files: tuple[Path, Path]) -> int:
    orderer = network.topology.org(org).orderers[0]
    ctx = client_context(network, org, files)
    url = f"https://{HOST}:{orderer.admin_port}/participation/v1/channels"
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (ssl.SSLError, ConnectionError, urllib.error.URLError):
        return 0  # refused during the handshake


@pytest.mark.parametrize("identity", TLS_KEYS)
def test_no_tls_key_of_the_org_may_use_its_orderers_admin_endpoint(network: Network, identity: str) -> None:
    status = _list_channels(network, "org1", tls_files(network, "org1", identity))
    assert status in (0, 401, 403), f"org1's {identity} TLS key used osnadmin: HTTP {status}"


def test_an_enrollment_certificate_may_not_either(network: Network) -> None:
    status = _list_channels(network, "org1", identity_files(network, "org1", "user1"))
    assert status in (0, 401, 403), f"org1's user1 used the orderer's admin endpoint: HTTP {status}"


def test_another_orgs_operator_may_not(network: Network) -> None:
    assert _list_channels(network, "org1", operator_files(network, "org2")) in (0, 401, 403)


def test_the_orgs_operator_certificate_may(network: Network) -> None:
    assert _list_channels(network, "org1", operator_files(network, "org1")) == 200
