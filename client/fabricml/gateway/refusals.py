"""Coded chaincode refusals: read the code a contract put in front of its message.

A contract refuses with "CODE: message" (chaincode/ledgerutil/refusal.go); the peer
wraps it ("chaincode response 500, CODE: message"). Callers branch on `Refusal.code`,
never on the wording."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from .errors import GatewayError


class RefusalCode(StrEnum):
    """Why a contract refused; the same list as ledgerutil.Codes in Go."""

    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    ALREADY_DONE = "ALREADY_DONE"
    WRONG_PHASE = "WRONG_PHASE"
    FORBIDDEN = "FORBIDDEN"
    INVALID = "INVALID"
    EXHAUSTED = "EXHAUSTED"
    INTERNAL = "INTERNAL"


_CODED = re.compile(
    r"(?:^|chaincode response \d+, )(" + "|".join(c.value for c in RefusalCode) + r"): (.*)", re.S
)


@dataclass(frozen=True)
class Refusal:
    """A contract's coded refusal: the code and the contract's own sentence."""

    code: RefusalCode
    message: str


def parse(message: str) -> Refusal | None:
    """The refusal in one peer's (or the Gateway's) message, if the chaincode coded it."""
    m = _CODED.search(message)
    return Refusal(RefusalCode(m.group(1)), m.group(2).strip()) if m else None


def refusal_of(exc: BaseException) -> Refusal | None:
    """The coded refusal behind a Gateway error: per-peer details first, then the message."""
    if not isinstance(exc, GatewayError):
        return None
    for detail in exc.details:
        found = parse(detail.message)
        if found:
            return found
    return parse(str(exc.args[0]) if exc.args else "")


def is_refusal(exc: BaseException, *codes: RefusalCode) -> bool:
    """True when exc is a chaincode refusal with one of `codes` (any code if none given)."""
    found = refusal_of(exc)
    return found is not None and (not codes or found.code in codes)
