"""What a site's operator runs for a task and an attested answer: bad input is refused
before anything reaches the ledger, and a site's inference service trusts each member's
revocation list as the channel carries it (the site has no other member's CA directory)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from fabricml.attest.service_tls import member_crl
from fabricml.cli.root import main
from fabricml.network.network import Network
from fabricml.network.topology import load
from tests.conftest import TOPOLOGIES


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["fed", "create", "t1", "--initial-model", "m@r0", "--rounds", "0"], "--rounds"),
        (["fed", "create", "t1", "--initial-model", "m@r0", "--min-participants", "1"], "--min-participants"),
        (["fed", "create", "t1", "--initial-model", "m@r0", "--stake", "-5"], "--stake"),
        (["fed", "create", "t1"], "--initial-model"),
        (["token", "vote-mint", "v1", "Org1MSP", "0"], "AMOUNT"),
        (["token", "vote-mint", "v1", "Org1MSP", "-3"], "AMOUNT"),
        (
            [
                "attest",
                "ask",
                "https://127.0.0.1:7041",
                "--service-org",
                "org1",
                "--out",
                "r.json",
                "--inputs",
                "/no/such/inputs.json",
            ],
            "--inputs",
        ),
    ],
)
def test_bad_input_is_refused_naming_the_option(args: list[str], named: str) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert named in result.output, result.output


def test_a_sites_service_reads_members_lists_from_the_channel_copy(tmp_path: Path) -> None:
    net = Network(load(TOPOLOGIES / "raft3.yaml"), tmp_path)
    org2 = net.topology.org("org2")
    local = member_crl(net, org2)  # a local consortium: the CA's own list
    assert local == net.layout.ca_home(org2) / "registrar" / "msp" / "crls" / "crl.pem"
    channel_copy = tmp_path / "revocations" / "org2.crl.pem"
    channel_copy.parent.mkdir()
    channel_copy.write_text("-----BEGIN X509 CRL-----\n")
    assert member_crl(net, org2) == channel_copy
