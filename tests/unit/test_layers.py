"""The layer contract in pyproject.toml holds, and catches an import that points up."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).parents[2]
FOLDERS = ("network", "client", "ml", "api")  # each holds part of the fabricml namespace


def _lint(folders: list[Path], config: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports with `fabricml` found only in `folders` (not in the installed checkout)."""
    installed = [str(REPO / f) for f in FOLDERS]
    script = (
        "import sys\n"
        f"sys.path = [p for p in sys.path if p not in {installed!r}] + {[str(f) for f in folders]!r}\n"
        "from importlinter.cli import lint_imports\n"
        f"sys.exit(lint_imports(config_filename={str(config)!r}, no_cache=True, no_logo=True))\n"
    )
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)


def test_the_source_tree_keeps_its_layers() -> None:
    result = _lint([REPO / f for f in FOLDERS], REPO / "pyproject.toml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_an_import_from_a_lower_layer_up_breaks_the_contract(tmp_path: Path) -> None:
    copies = []
    for folder in FOLDERS:
        skip = shutil.ignore_patterns("__pycache__", "*.json", "*.html", "*.js", "*.css")
        shutil.copytree(REPO / folder / "fabricml", tmp_path / folder / "fabricml", ignore=skip)
        copies.append(tmp_path / folder)
    wrong = tmp_path / "client" / "fabricml" / "gateway" / "upward.py"
    wrong.write_text(
        '"""Deliberately wrong: the gateway must not know the CLI."""\n\nfrom fabricml.cli import app\n'
    )
    result = _lint(copies, REPO / "pyproject.toml")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout and "fabricml.gateway.upward -> fabricml.cli.app" in result.stdout, (
        result.stdout
    )
