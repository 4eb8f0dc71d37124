"""Every route and dashboard page checks its identifiers in the path with the ledger's rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fabricml.api.app import create_app
from fabricml.api.settings import ApiSettings
from fabricml.contracts import identifiers as ids

RULES = {
    "name": ids.MODEL_NAME_PATTERN,
    "version": ids.MODEL_VERSION_PATTERN,
    "task_id": ids.LEDGER_ID_PATTERN,
}


def _path_params(tmp_path: Path) -> list[tuple[str, dict[str, Any]]]:
    spec = create_app(ApiSettings(org="org1", state_dir=tmp_path)).openapi()
    return [
        (route, p)
        for route, methods in spec["paths"].items()
        for op in methods.values()
        for p in op.get("parameters", [])
        if p["in"] == "path" and p["name"] in RULES and not route.startswith("/api/v1/identities")
    ]


def test_model_and_task_ids_in_paths_carry_the_ledger_pattern(tmp_path: Path) -> None:
    found = _path_params(tmp_path)
    routes = {route for route, _ in found}
    assert "/models/{name}/{version}" in routes and "/federation/{task_id}" in routes  # the dashboard's
    assert "/api/v1/models/{name}/{version}" in routes and "/api/v1/federation/tasks/{task_id}" in routes
    for route, p in found:
        assert p["schema"].get("pattern") == RULES[p["name"]], (route, p)
