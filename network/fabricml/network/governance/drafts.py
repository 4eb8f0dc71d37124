"""Drafts of each proposal kind, computed from a site's copy of the current config."""

from __future__ import annotations

import json
from typing import Any

from ..bundle import SiteBundle
from . import updates
from .flow import Draft
from .orgdef import PublicMSP
from .site import ConfigSnapshot
from .sponsor import sponsorship
from .translator import Translator


def _draft(
    translator: Translator, channel: str, snapshot: ConfigSnapshot, edited: dict[str, Any], **fields: Any
) -> Draft:
    update = translator.compute_update(channel, snapshot.json, edited)
    return Draft(update=update, **fields)


def policy(
    translator: Translator, channel: str, snapshot: ConfigSnapshot, path: str, new: Any, summary: str = ""
) -> Draft:
    """Set the value or policy at path (configtxlator JSON of its inner value or policy)."""
    edited = updates.set_element(snapshot.json, path, new)
    summary = summary or f"Set {path} to {json.dumps(new, sort_keys=True)}"
    return _draft(translator, channel, snapshot, edited, kind="policy", subject=path, summary=summary)


def add_org(
    translator: Translator,
    channel: str,
    snapshot: ConfigSnapshot,
    msp: PublicMSP,
    bundle: SiteBundle,
    summary: str = "",
) -> Draft:
    """Add the newcomer of a (verified, imported) bundle: its MSP, read from the files the
    import made, and its orderers' endpoints. Its anchor peer it sets itself once its peer
    joined (`fabricml site join`), as every founding org did."""
    if msp.msp_id != bundle.msp_id:
        raise updates.UpdateError(f"the MSP is {msp.msp_id}'s, the bundle {bundle.msp_id}'s")
    edited = updates.add_org(snapshot.json, msp, [], [o.address for o in bundle.orderers])
    summary = summary or (
        f"Add {msp.msp_id} (site {bundle.name}) to the consortium; its bundle's fingerprint is "
        f"{bundle.fingerprint}"
    )
    return _draft(
        translator,
        channel,
        snapshot,
        edited,
        kind="add-org",
        subject=msp.msp_id,
        summary=summary,
        bundle=sponsorship(bundle),
    )


def remove_org(
    translator: Translator, channel: str, snapshot: ConfigSnapshot, msp_id: str, summary: str = ""
) -> Draft:
    edited = updates.remove_org(snapshot.json, msp_id)
    summary = summary or f"Remove {msp_id} from the consortium"
    return _draft(translator, channel, snapshot, edited, kind="remove-org", subject=msp_id, summary=summary)


def add_consenter(
    translator: Translator,
    channel: str,
    snapshot: ConfigSnapshot,
    host: str,
    port: int,
    tls_cert: bytes,
    summary: str = "",
) -> Draft:
    edited = updates.add_consenter(snapshot.json, host, port, tls_cert)
    summary = summary or f"Add the Raft consenter {host}:{port}"
    return _draft(
        translator, channel, snapshot, edited, kind="consenter-add", subject=f"{host}:{port}", summary=summary
    )


def remove_consenter(
    translator: Translator, channel: str, snapshot: ConfigSnapshot, host: str, port: int, summary: str = ""
) -> Draft:
    edited = updates.remove_consenter(snapshot.json, host, port)
    summary = summary or f"Remove the Raft consenter {host}:{port}"
    return _draft(
        translator,
        channel,
        snapshot,
        edited,
        kind="consenter-remove",
        subject=f"{host}:{port}",
        summary=summary,
    )
