"""Each org's governance site on the shared test network."""

from __future__ import annotations

import pytest

from fabricml.network.governance.site import Site
from fabricml.network.network import Network


@pytest.fixture(scope="module")
def sites(network: Network) -> dict[str, Site]:
    """org name -> that org's site, acting with its own admin identity."""
    return {org.name: Site.open(network.site(org).layout.root) for org in network.topology.organizations}
