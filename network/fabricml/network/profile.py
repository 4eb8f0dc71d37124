"""A site's connection profile: its own identities, and the members' endpoints and TLS roots
from their bundles (the same shape `fabricml network up` has always written)."""

from __future__ import annotations

from typing import Any

from .bundle import SiteBundle
from .identities import identity_specs
from .layout import SiteLayout
from .members import Members
from .topology import Organization


def _identities(org: Organization, site: SiteLayout) -> dict[str, Any]:
    """The client identities the site issued (nodes' identities stay with the nodes)."""
    out = {}
    for spec in identity_specs(org):
        if spec.type in ("peer", "orderer"):
            continue
        msp = site.identity_msp(spec.name)
        out[spec.name] = {
            "type": spec.type,
            "role": spec.role,
            "mspDir": str(msp),
            "certificate": str(msp / "signcerts" / "cert.pem"),
            "keystore": str(msp / "keystore"),
        }
    return out


def connection_profile(
    org: Organization, site: SiteLayout, channel: str, chaincode: str, members: list[SiteBundle]
) -> dict[str, Any]:
    """A common connection profile, plus the org's identities for `--org` in the CLI."""
    book = Members(site)
    return {
        "name": f"{channel}-{org.name}",
        "version": "1.0.0",
        "client": {"organization": org.name},
        "channel": channel,
        "chaincode": chaincode,
        "organizations": {
            m.name: {"mspid": m.msp_id, "peers": [m.peer_name], "certificateAuthorities": [f"ca.{m.name}"]}
            for m in members
        },
        "peers": {
            m.peer_name: {
                "url": f"grpcs://{m.peer_address}",
                "tlsCACerts": {"path": str(book.ca_bundle(m.name))},
                "grpcOptions": {"ssl-target-name-override": m.peer_name},
            }
            for m in members
        },
        "orderers": {
            o.name: {"url": f"grpcs://{o.address}", "tlsCACerts": {"path": str(book.ca_bundle(m.name))}}
            for m in members
            for o in m.orderers
        },
        "certificateAuthorities": {
            org.ca_name: {
                "url": f"https://{org.address(org.ca_port)}",
                "caName": org.ca_name,
                "tlsCACerts": {"path": str(site.ca_cert)},
            }
        },
        "identities": _identities(org, site),
        # Identities enrolled later (`fabricml identity enroll`) are found here by name.
        "identitiesDir": str(site.root / "identities"),
        "artifactStore": str(site.artifact_store),
        "artifactServers": {
            m.name: {"url": m.body["artifactStore"], "tlsCACerts": {"path": str(book.ca_bundle(m.name))}}
            for m in members
        },
    }
