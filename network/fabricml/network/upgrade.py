"""Chaincode definitions after the first: each site approves an upgrade on its own, any site
commits once enough have approved, and each site then switches its server to the package
it approved for the committed sequence."""

from __future__ import annotations

from .bundle import SiteBundle
from .chaincode import check_version
from .founding import Definition
from .joining import Approval, approved, install, save_approved
from .site import Site, SiteError


def needed(rule: str, members: int) -> int:
    """Approvals the channel's LifecycleEndorsement rule asks for among `members` orgs."""
    return {"ANY": 1, "ALL": members, "MAJORITY": members // 2 + 1}[rule]


def joined_or_fail(site: Site) -> dict[str, object]:
    joined = site.joined
    if joined is None:
        raise SiteError(f"{site.org.name} has not joined a channel; run `fabricml site join` first")
    return joined


def pending(site: Site) -> Definition:
    """The definition this site approved last (the first one from the founder's proposal)."""
    approval = approved(site)
    if approval is not None:
        return approval.definition
    joined = joined_or_fail(site)
    return Definition(str(joined["chaincode"]), str(joined["version"]), int(str(joined["sequence"])))


def approve_upgrade(site: Site, version: str) -> Definition:
    """Build, install and approve `version` as the next sequence (state is kept). A member that
    missed an upgrade the others committed approves that committed definition instead."""
    joined = joined_or_fail(site)
    committed = site.lifecycle.committed()
    if committed is None:
        raise SiteError("no chaincode is committed yet; commit the first definition before an upgrade")
    sequence = int(committed["sequence"]) + 1
    if committed["version"] == check_version(version):
        if site.lifecycle.committed_approvals().get(site.org.msp_id):
            raise SiteError(
                f"chaincode version {version} is already committed and approved; pick a new version"
            )
        sequence -= 1  # catch up with the committed definition
    definition = Definition(str(joined["chaincode"]), version, sequence)
    deployment = install(site, definition)
    with site.step(f"approve {definition.chaincode} {version} (sequence {definition.sequence})"):
        site.lifecycle.approve(version, deployment.package_id, definition.sequence)
    save_approved(site, Approval(definition, deployment))
    return definition


def channel_members(site: Site) -> list[SiteBundle]:
    """The bundles of the orgs the joined channel names (checked at join)."""
    joined = joined_or_fail(site)
    msp_ids = set(dict(joined["members"]))  # type: ignore[call-overload]
    return [m.bundle for m in site.members.all() if m.bundle.msp_id in msp_ids]


def commit(site: Site) -> Definition:
    """Commit the definition this site approved, once the channel's rule is met by approvals."""
    joined = joined_or_fail(site)
    members = channel_members(site)
    definition = pending(site)
    committed = site.lifecycle.committed()
    if committed is not None and int(committed["sequence"]) >= definition.sequence:
        activate(site)
        return definition
    approvals = site.lifecycle.approvals(definition.version, definition.sequence)
    yes = [m for m in members if approvals.get(m.msp_id)]
    need = needed(str(joined["endorsement"]), len(members))
    if len(yes) < need:
        given = ", ".join(sorted(k for k, v in approvals.items() if v)) or "none"
        missing = ", ".join(sorted(k for k, v in approvals.items() if not v))
        raise SiteError(
            f"{definition.chaincode} {definition.version} (sequence {definition.sequence}) has {len(yes)} "
            f"approval(s) of the {need} needed (approved: {given}; not yet: {missing}); nothing was committed"
        )
    own_first = sorted(yes, key=lambda m: m.msp_id != site.org.msp_id)[:need]
    with site.step(f"commit {definition.chaincode} {definition.version} (sequence {definition.sequence})"):
        site.lifecycle.commit(definition.version, definition.sequence, own_first)
    activate(site)
    return definition


def activate(site: Site) -> bool:
    """Run the package this site approved for the committed sequence; True if it switched."""
    approval = approved(site)
    committed = site.lifecycle.committed_quietly()
    if approval is None or committed is None or int(committed["sequence"]) != approval.definition.sequence:
        return False
    joined = dict(joined_or_fail(site))
    joined.update(version=approval.definition.version, sequence=approval.definition.sequence)
    site.save_joined(joined)
    if site.deployment == approval.deployment and site.supervisor.alive(site.org.chaincode_name):
        return False
    with site.step(f"switch the chaincode server to {approval.deployment.package_id[:40]}…"):
        site.supervisor.stop(site.org.chaincode_name)
        site.layout.deployment.write_text(approval.deployment.to_json())
        site.start(("chaincode",))
    return True
