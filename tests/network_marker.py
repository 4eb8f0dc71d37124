"""Marks every test that needs a real Fabric network `network`, so that
`pytest -m "not network"` (scripts/test.sh --fast) runs all the others.

A test needs one when it uses the session's `network` fixture (directly or through
another fixture), or when it lives in a folder whose tests start networks of their own."""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).parent
OWN_NETWORKS = ("network", "sites", "fault")  # folders whose tests bring their own networks up


def needs_network(item: pytest.Item) -> bool:
    if "network" in getattr(item, "fixturenames", ()):
        return True
    try:
        folder = Path(str(item.path)).resolve().relative_to(TESTS).parts[0]
    except ValueError:
        return False
    return folder in OWN_NETWORKS


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if needs_network(item):
            item.add_marker(pytest.mark.network)
