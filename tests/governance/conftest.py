"""Each org's governance site on the shared test network."""

from __future__ import annotations

import pytest

from fabricml.gateway.profile import ConnectionProfile
from fabricml.network.governance.site import Site
from fabricml.network.network import Network


@pytest.fixture(scope="module")
def sites(network: Network) -> dict[str, Site]:
    """org name -> that org's site, acting with its own admin identity."""
    return {
        org.name: Site(ConnectionProfile.load(network.layout.profile(org)))
        for org in network.topology.organizations
    }
