"""The governance steps, each run by one org on its own site: propose, sign, submit, confirm."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from fabric_protos.common import configtx_pb2

from .orderer import OrdererRefusedError
from .review import Review, ReviewError, review
from .signatures import applied_update, config_signature, update_envelope
from .site import Site, config_blocks
from .sponsor import check_sponsored

WAIT_SECONDS = 60.0


@dataclass(frozen=True)
class Draft:
    """A config update ready to propose: what it is, about whom, and in plain words."""

    kind: str
    subject: str
    summary: str
    update: bytes
    bundle: dict[str, str] | None = None

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.update).hexdigest()


def propose(site: Site, draft: Draft) -> dict[str, Any]:
    """Review the draft against this site's config, then record it on the ledger."""
    current = site.current_config()
    review(draft.kind, draft.subject, current.config, configtx_pb2.ConfigUpdate.FromString(draft.update))
    request: dict[str, Any] = {
        "kind": draft.kind,
        "subject": draft.subject,
        "summary": draft.summary,
        "configUpdate": base64.b64encode(draft.update).decode(),
    }
    if draft.bundle is not None:
        request["bundle"] = draft.bundle
    result: dict[str, Any] = site.submit("Propose", json.dumps(request))
    return result


def proposal(site: Site, proposal_id: str) -> dict[str, Any]:
    found: dict[str, Any] = site.evaluate("GetProposal", proposal_id)
    return found


def update_of(found: dict[str, Any]) -> bytes:
    """The proposal's update bytes, checked against its recorded digest."""
    update = base64.b64decode(found["configUpdate"])
    if hashlib.sha256(update).hexdigest() != found["updateDigest"]:
        raise ValueError(f"proposal {found['id']}: the update does not match its recorded digest")
    return update


def sign(site: Site, proposal_id: str) -> tuple[dict[str, Any], Review]:
    """Review the proposal against this site's own config (and, for a newcomer, against the
    bundle this site imported for it); if it holds, sign and record."""
    found = proposal(site, proposal_id)
    update = update_of(found)
    current = site.current_config()
    parsed = configtx_pb2.ConfigUpdate.FromString(update)
    checked = review(found["kind"], found["subject"], current.config, parsed)
    if found["kind"] == "add-org" and site.members is not None:
        known = site.members.by_msp_id(found["subject"])
        if known is None:
            fingerprint = (found.get("bundle") or {}).get("fingerprint")
            raise ReviewError(
                f"this site has not imported {found['subject']}'s bundle; compare its fingerprint "
                f"({fingerprint} on the ledger) with its admin, `fabricml site import` it, then sign"
            )
        check_sponsored(found, parsed, known.bundle)
    signature = config_signature(update, site.signing)
    recorded: dict[str, Any] = site.submit("Sign", proposal_id, base64.b64encode(signature).decode())
    return recorded, checked


@dataclass(frozen=True)
class Applied:
    block_number: int
    update_digest: str
    outcome: dict[str, Any]


def submit(site: Site, proposal_id: str, wait: float = WAIT_SECONDS) -> Applied:
    """Assemble the recorded signatures, send the envelope to this site's orderer, wait for
    the config block and record the outcome. Raises OrdererRefusedError with the
    orderer's reason when the channel's policy is not met."""
    found = proposal(site, proposal_id)
    update = update_of(found)
    signatures = [base64.b64decode(s["configSignature"]) for s in found["signatures"]]
    before = site.current_config().block_number
    envelope = update_envelope(site.channel, update, signatures, site.signing)
    with site.orderer() as orderer:
        orderer.broadcast(envelope)
        number = _wait_for_config(site, found["updateDigest"], before, wait)
    outcome: dict[str, Any] = site.submit("RecordOutcome", proposal_id, str(number), found["updateDigest"])
    return Applied(number, found["updateDigest"], outcome)


def _wait_for_config(site: Site, digest: str, after: int, wait: float) -> int:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        snapshot_block = find_applied(site, digest, newer_than=after)
        if snapshot_block is not None:
            return snapshot_block
        time.sleep(0.5)
    raise TimeoutError(f"no config block applied update {digest[:16]} within {wait:.0f}s")


def find_applied(site: Site, digest: str, newer_than: int = -1) -> int | None:
    """The config block (newer than a block number) that applied the update with this digest."""
    with site.orderer() as orderer:
        latest = orderer.last_config_index(orderer.block(None))
        for number, block in config_blocks(orderer, latest):
            if number <= newer_than:
                return None
            update = applied_update(block)
            if update is not None and hashlib.sha256(update).hexdigest() == digest:
                return number
    return None


def confirm(site: Site, proposal_id: str) -> dict[str, Any]:
    """Find, on this site's own orderer, the config block that applied the proposal, and
    record that as this org's outcome."""
    found = proposal(site, proposal_id)
    number = find_applied(site, found["updateDigest"])
    if number is None:
        raise LookupError(f"no config block on this site's orderer applied proposal {proposal_id}")
    outcome: dict[str, Any] = site.submit("RecordOutcome", proposal_id, str(number), found["updateDigest"])
    return outcome


__all__ = ["Applied", "Draft", "OrdererRefusedError", "confirm", "propose", "sign", "submit"]
