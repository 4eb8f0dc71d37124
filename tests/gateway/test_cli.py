"""The per-org CLI: tx, events and identity commands, as an operator runs them."""

from __future__ import annotations

import json
import uuid

from fabricml.network.network import Network
from tests.conftest import fabricml, network_options


def _cli(network: Network, *args: str, check: bool = True) -> tuple[int, str, str]:
    where = network_options(network)
    result = fabricml(*args, *where, check=check)
    return result.returncode, result.stdout, result.stderr


def test_tx_submit_through_one_org_is_evaluated_through_another(network: Network) -> None:
    key = f"cli-{uuid.uuid4().hex[:8]}"
    _, out, _ = _cli(network, "tx", "submit", "Conformance:Put", key, "blue", "--org", "org2", "--json")
    submitted = json.loads(out)
    assert submitted["status"] == "VALID" and submitted["result"] == "blue"
    assert len(submitted["transactionId"]) == 64 and submitted["blockNumber"] > 0
    _, out, _ = _cli(network, "tx", "evaluate", "Get", key, "--contract", "Conformance", "--org", "org3")
    assert out.strip() == "blue"


def test_tx_errors_are_json_with_the_per_peer_details_and_exit_1(network: Network) -> None:
    code, out, _ = _cli(network, "tx", "submit", "Conformance:Fail", "refused", "--json", check=False)
    assert code == 1
    error = json.loads(out)
    assert error["error"] == "EndorseError" and error["transactionId"]
    assert any("refused" in d["message"] for d in error["details"])


def test_tx_transient_data_and_endorsing_orgs_are_passed_through(network: Network) -> None:
    _, out, _ = _cli(
        network, "tx", "evaluate", "Conformance:EchoTransient", "pin", "--transient", "pin=4321", "--json"
    )
    assert json.loads(out) == {"result": "4321"}
    key = f"cli-{uuid.uuid4().hex[:8]}"
    _, out, _ = _cli(
        network, "tx", "submit", "Conformance:FailOnOrg", "Org2MSP", key,
        "--endorsing-org", "Org1MSP", "--endorsing-org", "Org3MSP", "--json",
    )  # fmt: skip
    assert json.loads(out)["result"] == "endorsed"


def test_events_replays_chaincode_events_as_json_lines(network: Network) -> None:
    key = f"cli-{uuid.uuid4().hex[:8]}"
    _, out, _ = _cli(
        network, "tx", "submit", "Conformance:PutWithEvent", key, "payload-x", "CliEvent", "--json"
    )
    block = json.loads(out)["blockNumber"]
    _, out, _ = _cli(network, "events", "--start-block", str(block), "--limit", "1", "--json")
    event = json.loads(out.strip().splitlines()[0])
    assert (event["blockNumber"], event["event"], event["payload"]) == (block, "CliEvent", "payload-x")


def test_a_registered_and_enrolled_user_transacts_until_revoked(network: Network) -> None:
    name = f"analyst{uuid.uuid4().hex[:6]}"
    _, out, _ = _cli(network, "identity", "register", name, "--org", "org2", "--role", "auditor", "--json")
    secret = json.loads(out)["secret"]
    _cli(network, "identity", "enroll", name, "--org", "org2", "--secret", secret)
    _, out, _ = _cli(network, "identity", "list", "--org", "org2", "--json")
    assert {"name": name, "type": "client", "role": "auditor", "maxEnrollments": "1"} in json.loads(out)
    _, out, _ = _cli(network, "tx", "evaluate", "Consortium:WhoAmI", "--org", "org2", "--identity", name)
    assert json.loads(out)["role"] == "auditor"
    key = f"cli-{uuid.uuid4().hex[:8]}"
    _cli(network, "tx", "submit", "Conformance:Put", key, "before", "--org", "org2", "--identity", name)

    _cli(network, "identity", "revoke", name, "--org", "org2", "--reason", "keycompromise")
    code, _, err = _cli(
        network,
        "tx",
        "submit",
        "Conformance:Put",
        key,
        "after",
        "--org",
        "org2",
        "--identity",
        name,
        check=False,
    )
    assert code == 1 and "access denied" in err
    _, out, _ = _cli(network, "tx", "evaluate", "Conformance:Get", key, "--org", "org2")
    assert out.strip() == "before"
    # Other identities of the same org are unaffected.
    _cli(network, "tx", "submit", "Conformance:Put", key, "by user1", "--org", "org2")


def test_an_unknown_identity_is_named_with_the_known_ones(network: Network) -> None:
    code, _, err = _cli(network, "tx", "evaluate", "Consortium:Info", "--identity", "nobody", check=False)
    assert code == 1 and "nobody" in err and "user1" in err
