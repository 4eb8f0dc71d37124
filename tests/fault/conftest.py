"""The fault tests' own network and its auditor (the demo they run: tests/fault/demo.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from fabricml.network.network import Network
from tests.conftest import running_network
from tests.fault.invariants import Auditor
from tests.fault.nodes import PAUSE

TOPOLOGY = Path(__file__).parent / "topology.yaml"


@pytest.fixture(scope="session")
def fault_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    """A three-organization Raft network of its own, since these tests kill its nodes."""
    os.environ.setdefault("FABRICML_HOME", str(tmp_path_factory.mktemp("fabricml-home")))
    yield from running_network(TOPOLOGY, tmp_path_factory.mktemp("fault"))


@pytest.fixture
def auditor(fault_network: Network) -> Iterator[Auditor]:
    """org3's auditor: org3's nodes are never the ones killed here."""
    with Auditor(fault_network, "org3") as a:
        yield a


__all__ = ["PAUSE"]
