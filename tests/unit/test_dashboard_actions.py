"""The dashboard offers a write only when the ledger would accept it, and says why not."""

from __future__ import annotations

from typing import Any

from fabricml.api.auth import Caller
from fabricml.api.dashboard.actions import approve_model
from fabricml.api.schemas import ModelRecord

ADMIN = Caller("admin", "Org2MSP", "admin", "f" * 64)
AUDITOR = Caller("auditor", "Org2MSP", "auditor", "e" * 64)


def record(status: str = "registered", approvers: tuple[str, ...] = ()) -> ModelRecord:
    actor: dict[str, Any] = {
        "mspId": "Org1MSP",
        "subject": "trainer",
        "at": "2026-12-01T00:00:00Z",
        "txId": "t",
    }
    return ModelRecord.model_validate(
        {
            "name": "m",
            "version": "1",
            "status": status,
            "manifestDigest": "a" * 64,
            "registeredBy": actor,
            "approvals": [{**actor, "mspId": m, "subject": "admin"} for m in approvers],
        }
    )


def test_an_admin_whose_org_has_not_approved_may_approve() -> None:
    assert approve_model(record(approvers=("Org1MSP",)), ADMIN, "Org2MSP").allowed


def test_an_org_that_already_approved_is_told_so() -> None:
    action = approve_model(record("approved", ("Org1MSP", "Org2MSP")), ADMIN, "Org2MSP")
    assert not action.allowed
    assert "Org2MSP already approved" in action.reason


def test_revoked_and_deprecated_versions_cannot_be_approved() -> None:
    for status in ("revoked", "deprecated"):
        action = approve_model(record(status), ADMIN, "Org2MSP")
        assert not action.allowed and status in action.reason


def test_an_auditor_is_told_only_admins_approve() -> None:
    action = approve_model(record(), AUDITOR, "Org2MSP")
    assert not action.allowed and "only an admin of Org2MSP" in action.reason
