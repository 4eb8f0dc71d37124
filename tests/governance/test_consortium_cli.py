"""`fabricml consortium` as an operator runs it: each step as one org, JSON out, coded refusals."""

from __future__ import annotations

import json

import pytest

from fabricml.network.network import Network
from tests.conftest import fabricml, network_options

pytestmark = pytest.mark.network


def _run(network: Network, *args: str, org: str = "org1", check: bool = True) -> tuple[int, object]:
    where = network_options(network)
    result = fabricml("consortium", *args, "--org", org, "--json", *where, check=check)
    return result.returncode, json.loads(result.stdout)


def test_propose_sign_and_submit_from_the_command_line(network: Network) -> None:
    _, proposal = _run(
        network,
        "propose",
        "policy",
        "/Channel/Orderer/BatchTimeout",
        "--value",
        '{"timeout": "450ms"}',
        org="org2",
    )
    assert isinstance(proposal, dict) and proposal["kind"] == "policy"
    pid = proposal["id"]
    _, signed = _run(network, "sign", pid, org="org2")
    assert isinstance(signed, dict) and signed["review"] == ["modify value /Channel/Orderer/BatchTimeout"]

    rc, refused = _run(network, "submit", pid, org="org2", check=False)
    assert rc == 1 and isinstance(refused, dict)
    assert refused["status"] == "BAD_REQUEST" and "2 of the 'Admins'" in refused["message"]

    rc, again = _run(network, "sign", pid, org="org2", check=False)
    assert rc == 1 and isinstance(again, dict) and again["code"] == "CONFLICT"

    _run(network, "sign", pid, org="org3")
    _, applied = _run(network, "submit", pid, org="org3")
    assert isinstance(applied, dict) and applied["outcome"]["mspId"] == "Org3MSP"
    _, listed = _run(network, "proposals")
    assert isinstance(listed, list)
    mine = next(p for p in listed if p["id"] == pid)
    assert mine["status"] == "applied" and [s["mspId"] for s in mine["signatures"]] == ["Org2MSP", "Org3MSP"]


def test_a_summary_naming_another_path_is_refused_with_its_code(network: Network) -> None:
    rc, refused = _run(
        network, "propose", "policy", "/Channel/Orderer/BatchTimeout", "--value", '{"timeout": "300ms"}',
        "--summary", "Set /Channel/Orderer/BatchTimeout (and /Channel/Orderer/BatchSize)", check=False,
    )  # fmt: skip
    assert rc == 1 and isinstance(refused, dict) and refused["code"] == "INVALID"
    assert "/Channel/Orderer/BatchSize" in refused["message"]
