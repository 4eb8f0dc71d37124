"""The network's commands fail in one way: a known error is `error: <message>`, exit code 1."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from rich.console import Console

from fabricml.cli.root import main
from fabricml.network.clierrors import reports


class KnownError(Exception):
    pass


def _probe(raised: Exception) -> click.Command:
    @click.command("probe")
    @reports(Console(stderr=True), KnownError)
    @click.option("--name", default="n", show_default=True, help="A name.")
    def probe(name: str) -> None:
        """Fails on purpose."""
        raise raised

    return probe


def test_a_known_error_is_printed_once_with_exit_code_1() -> None:
    result = CliRunner().invoke(_probe(KnownError("no such site org9")), [])
    assert result.exit_code == 1
    assert result.output.count("error: no such site") == 1, result.output


def test_a_message_with_brackets_and_a_long_path_arrives_whole() -> None:
    message = "name must match [a-z0-9-]{1,40}, got " + "/very/long" * 20 + "/[org9]"
    result = CliRunner().invoke(_probe(KnownError(message)), [])
    assert result.exit_code == 1
    assert result.output.strip() == f"error: {message}", result.output


def test_an_unknown_error_is_a_bug_and_keeps_its_traceback() -> None:
    result = CliRunner().invoke(_probe(ZeroDivisionError("oops")), [])
    assert isinstance(result.exception, ZeroDivisionError)
    assert "error:" not in result.output


def test_the_decorated_command_keeps_its_options_and_help() -> None:
    result = CliRunner().invoke(_probe(KnownError("x")), ["--help"])
    assert result.exit_code == 0
    assert "Fails on purpose." in result.output and "--name TEXT  A name.  [default: n]" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["network", "status"],
        ["network", "down"],
        ["network", "logs"],
        ["network", "ports"],
        ["network", "compose"],
        ["network", "deploy", "--version", "1.1"],
        ["network", "stop-node", "peer0.org1"],
    ],
)
def test_a_network_command_on_a_missing_topology_fails_with_its_name(tmp_path: Path, args: list[str]) -> None:
    missing = tmp_path / "none.yaml"
    result = CliRunner().invoke(main, [*args, "--topology", str(missing)])
    assert result.exit_code == 1, result.output
    said = " ".join(result.output.split())  # rich wraps long lines at 80 columns
    assert f"error: topology file {missing} does not exist" in said, result.output


def test_an_error_after_the_consortium_is_open_is_reported_too(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["network", "logs", "nosuch", "--state-dir", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "error: no log for 'nosuch'" in " ".join(result.output.split()), result.output


def test_a_site_command_without_a_site_fails_with_what_to_run(tmp_path: Path) -> None:
    for args in (["site", "status"], ["chaincode", "commit"], ["site", "deploy", "compose"]):
        result = CliRunner().invoke(main, [*args, "--state-dir", str(tmp_path / "nosite")])
        assert result.exit_code == 1, (args, result.output)
        assert "error:" in result.output and "site init" in result.output, (args, result.output)
