"""The API answers a ledger refusal by its code, never by its wording."""

from __future__ import annotations

import grpc
import pytest

from fabricml.api.ledger import HTTP_STATUS, refusal
from fabricml.api.services.identities import _refused, ca_error_code
from fabricml.gateway import EndorseError, ErrorDetail, EvaluateError, RefusalCode
from fabricml.network.identities import CAError


def _refused_by_peer(message: str) -> EndorseError:
    detail = ErrorDetail("127.0.0.1:7110", "Org1MSP", f"chaincode response 500, {message}")
    return EndorseError(
        "failed to endorse transaction, see attached details", grpc.StatusCode.ABORTED, [detail], "tx9"
    )


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (RefusalCode.NOT_FOUND, 404),
        (RefusalCode.INVALID, 422),
        (RefusalCode.FORBIDDEN, 403),
        (RefusalCode.CONFLICT, 409),
        (RefusalCode.ALREADY_DONE, 409),
        (RefusalCode.WRONG_PHASE, 409),
        (RefusalCode.EXHAUSTED, 409),
        (RefusalCode.INTERNAL, 500),
    ],
)
def test_each_refusal_code_has_its_http_status(code: RefusalCode, status: int) -> None:
    # The same words under every code: only the code decides.
    answer = refusal(_refused_by_peer(f"{code}: task t1 does not exist"))
    assert (answer.status, answer.code, answer.message) == (status, code, "task t1 does not exist")
    assert answer.transaction_id == "tx9" and answer.endorsers == ("127.0.0.1:7110 (Org1MSP)",)


def test_every_code_is_mapped() -> None:
    assert set(HTTP_STATUS) == set(RefusalCode)


def test_wording_without_a_code_decides_nothing() -> None:
    # "not found" once meant 404; without a code it is a plain refusal.
    assert refusal(_refused_by_peer("no federated task x was found")).status == 409


def test_an_unreachable_peer_is_503() -> None:
    exc = EvaluateError("connection refused", grpc.StatusCode.UNAVAILABLE, [], "")
    assert refusal(exc).status == 503


@pytest.mark.parametrize(
    ("output", "status"),
    [
        ("Error: Response from server: Error Code: 74 - Identity 'bob' is already registered", 409),
        ("Error: Response from server: Error Code: 20 - Authentication failure", 400),
        ("Error: Response from server: Error Code: 10 - Identity bob was not found: no rows", 404),
        ("Error: Response from server: Error Code: 66 - Certificate ... was already revoked", 409),
        ("Error: Response from server: Error Code: 0 - identity not found", 409),  # the words decide nothing
    ],
)
def test_fabric_ca_errors_are_read_by_their_numeric_code(output: str, status: int) -> None:
    exc = CAError(f"fabric-ca-client register at ca.org1 failed: {output}")
    assert ca_error_code(exc) == int(output.split("Error Code: ")[1].split(" ")[0])
    assert _refused(exc).status == status
