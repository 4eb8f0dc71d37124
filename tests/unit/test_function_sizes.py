"""Functions stay small: none over 60 lines, none with more than 8 parameters (take one
options object instead). Checked for the modules listed in AREA; `offenders()` lists the
whole product (python -m tests.unit.test_function_sizes)."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).parents[2]
MAX_LINES = 60
MAX_PARAMETERS = 8
AREA = [
    "client/fabricml/cli", "client/fabricml/contracts", "client/fabricml/demo", "api/fabricml/api",
    "ml/fabricml/attest", "ml/fabricml/registry/service.py", "ml/fabricml/registry/connect.py",
    "ml/fabricml/federation/agent.py", "ml/fabricml/federation/agent_state.py",
    "ml/fabricml/federation/participation.py", "ml/fabricml/federation/reveals.py",
    "ml/fabricml/federation/round_models.py", "ml/fabricml/federation/global_model.py",
    "ml/fabricml/flower", "bench",
]  # fmt: skip
PRODUCT = ["network/fabricml", "client/fabricml", "ml/fabricml", "api/fabricml", "bench"]


def _files(paths: list[str]) -> Iterator[Path]:
    for p in paths:
        path = REPO / p
        yield from sorted(path.rglob("*.py")) if path.is_dir() else [path]


def _parameters(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    a = node.args
    names = [x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
    return len([n for n in names if n not in ("self", "cls")])


def offenders(paths: list[str]) -> list[str]:
    found = []
    for path in _files(paths):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            lines = (node.end_lineno or node.lineno) - node.lineno + 1
            where = f"{path.relative_to(REPO)}:{node.lineno} {node.name}"
            if lines > MAX_LINES:
                found.append(f"{where}: {lines} lines")
            if _parameters(node) > MAX_PARAMETERS:
                found.append(f"{where}: {_parameters(node)} parameters")
    return found


def test_no_function_in_the_area_is_too_long_or_takes_too_many_parameters() -> None:
    assert offenders(AREA) == []


def test_the_checker_finds_a_long_function_with_many_parameters(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    (tmp_path / "bad.py").write_text(f"def f(a, b, c, d, e, f, g, h, i):\n{body}\n")
    global REPO
    saved, REPO = REPO, tmp_path
    try:
        assert offenders(["bad.py"]) == [f"bad.py:1 f: {MAX_LINES + 1} lines", "bad.py:1 f: 9 parameters"]
    finally:
        REPO = saved


def test_the_agent_class_stays_under_250_lines() -> None:
    tree = ast.parse((REPO / "ml/fabricml/federation/agent.py").read_text())
    [agent] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Agent"]
    assert (agent.end_lineno or 0) - agent.lineno + 1 < 250


if __name__ == "__main__":
    print("\n".join(offenders(sys.argv[1:] or PRODUCT)))
