"""The Consortium contract: members, heartbeats, and who the chaincode thinks the caller is."""

from __future__ import annotations

from .call import ContractClient, evaluate, submit
from .records import Record, many


class Member(Record):
    msp_id: str
    display_name: str
    admin: str
    joined_at: str
    joined_tx_id: str
    updated_at: str = ""


class Heartbeat(Record):
    msp_id: str
    subject: str
    at: str
    tx_id: str


class Info(Record):
    version: str
    members: int


class CallerIdentity(Record):
    """The calling identity as the chaincode reads its certificate."""

    msp_id: str
    subject: str
    node_role: str  # admin, client, peer or orderer (the NodeOU)
    role: str  # the `role` attribute: trainer, inference, auditor or ""

    @property
    def key(self) -> str:
        """ "MSPID/subject", as the Federation contract names participants."""
        return f"{self.msp_id}/{self.subject}"


class ConsortiumClient(ContractClient):
    """Typed calls of the Consortium contract."""

    CONTRACT = "Consortium"

    def join(self, display_name: str) -> Member:
        """Record (or rename) the caller's org as a member (org admins).
        Refusals: FORBIDDEN, INVALID (display name)."""
        return self._run(submit(Member.from_bytes, "Join", display_name))

    def heartbeat(self) -> Heartbeat:
        """Record that the caller's org can commit transactions now."""
        return self._run(submit(Heartbeat.from_bytes, "Heartbeat"))

    def get_member(self, msp_id: str) -> Member:
        """Refusals: NOT_FOUND."""
        return self._run(evaluate(Member.from_bytes, "GetMember", msp_id))

    def list_members(self) -> tuple[Member, ...]:
        """Every member, ordered by MSP ID."""
        return self._run(evaluate(many(Member), "ListMembers"))

    def who_am_i(self) -> CallerIdentity:
        return self._run(evaluate(CallerIdentity.from_bytes, "WhoAmI"))

    def info(self) -> Info:
        """The chaincode's version and the member count."""
        return self._run(evaluate(Info.from_bytes, "Info"))
