"""Which write actions a dashboard viewer's org can still take, and why not when it cannot.

The pages offer a button only when the ledger would accept the click; otherwise they say why."""

from __future__ import annotations

from dataclasses import dataclass

from ..auth import Caller
from ..schemas import ModelRecord


@dataclass(frozen=True)
class Action:
    """A write the viewer may take (`allowed`), or the reason it is not offered."""

    allowed: bool
    reason: str = ""


def approve_model(record: ModelRecord, caller: Caller, msp_id: str) -> Action:
    """Approving a version: an admin of an org that has not approved it yet, while it is live."""
    if not caller.can_write:
        return Action(False, f"only an admin of {msp_id} may approve; you are signed in as {caller.role}")
    if record.status in ("revoked", "deprecated"):
        return Action(False, f"this version is {record.status} and can no longer be approved")
    for approval in record.approvals or []:
        if approval.mspId == msp_id:
            return Action(False, f"{msp_id} already approved this version ({approval.at})")
    return Action(True)
