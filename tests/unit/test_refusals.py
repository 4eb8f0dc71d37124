"""Coded refusals: the Python reader agrees with the Go helper and ignores wording."""

from __future__ import annotations

import re
from pathlib import Path

import grpc

from fabricml.gateway import EndorseError, ErrorDetail, RefusalCode, is_refusal, refusal_of
from fabricml.gateway.refusals import parse

GO_CODES = Path(__file__).parents[2] / "chaincode" / "ledgerutil" / "refusal.go"


def test_the_python_codes_are_exactly_the_go_codes() -> None:
    go = re.findall(r'^\s+\w+\s+Code = "([A-Z_]+)"', GO_CODES.read_text(), re.M)
    assert go == [c.value for c in RefusalCode]


def test_a_peer_wrapped_refusal_is_read_from_the_endorsers_details() -> None:
    exc = EndorseError(
        "failed to endorse transaction, see attached details for more info",
        grpc.StatusCode.ABORTED,
        [
            ErrorDetail(
                "127.0.0.1:7110",
                "Org2MSP",
                "chaincode response 500, ALREADY_DONE: Org2MSP/trainer [x] committed",
            )
        ],
        "tx1",
    )
    found = refusal_of(exc)
    assert found is not None
    assert found.code is RefusalCode.ALREADY_DONE
    assert found.message == "Org2MSP/trainer [x] committed"
    assert is_refusal(exc, RefusalCode.ALREADY_DONE)
    assert not is_refusal(exc, RefusalCode.NOT_FOUND)


def test_an_uncoded_or_unknown_code_is_no_refusal() -> None:
    assert parse("chaincode response 500, something broke") is None
    assert parse("chaincode response 500, MAYBE: not a code") is None
    assert refusal_of(ValueError("NOT_FOUND: x")) is None
    exc = EndorseError("transport is closing", grpc.StatusCode.UNAVAILABLE, [])
    assert refusal_of(exc) is None
