"""The `fabricml` shell: shared options parsed once, errors printed as the user wrote them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from fabricml.cli.app import App, pass_app, shared_options
from fabricml.cli.root import main

FABRICML = [sys.executable, "-m", "fabricml.cli"]


def test_an_error_message_with_brackets_is_printed_as_is(tmp_path: Path) -> None:
    # Issue 17.1: rich markup swallowed "[a-z0-9]" and anything else in square brackets.
    model = tmp_path / "model"
    model.mkdir()
    args = ["model", "register", str(model), "--name", "m", "--version", "1", "--param", "[a-z0-9]{0,63}"]
    result = subprocess.run([*FABRICML, *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "error: --param '[a-z0-9]{0,63}' is not KEY=VALUE" in result.stderr, result.stderr


def _probe() -> click.Command:
    @click.command("probe")
    @shared_options
    @pass_app
    def probe(app: App) -> None:
        click.echo(
            json.dumps({"topology": str(app.topology_file), "state": str(app.state_dir), "json": app.as_json})
        )

    return probe


def test_the_shared_options_are_read_before_or_after_the_command(tmp_path: Path) -> None:
    group = click.Group("root", commands={"probe": _probe()})
    group = shared_options(group)
    before = CliRunner().invoke(
        group, ["--topology", "a.yaml", "--json", "probe", "--state-dir", str(tmp_path)]
    )
    assert json.loads(before.output) == {"topology": "a.yaml", "state": str(tmp_path), "json": True}
    after = CliRunner().invoke(group, ["probe", "--topology", "b.yaml"])
    assert json.loads(after.output) == {"topology": "b.yaml", "state": "None", "json": False}


def test_a_missing_topology_is_reported_once_with_exit_code_1(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["fed", "status", "t1", "--topology", str(tmp_path / "none.yaml")])
    assert result.exit_code == 1
    assert "error:" in result.output and "none.yaml" in result.output


def test_every_error_the_shell_knows_exists() -> None:
    import importlib

    from fabricml.cli.app import _KNOWN

    for module, name in _KNOWN:
        error = getattr(importlib.import_module(module), name)
        assert isinstance(error, type) and issubclass(error, Exception), (module, name)


def test_the_demo_command_passes_every_option_to_the_demo() -> None:
    from fabricml.cli.fed import demo, demo_options

    context = demo.make_context(
        "demo",
        ["--rounds", "2", "--task", "t9", "--no-serve", "--participant", "org1/trainer", "--dp-clip", "2"],
    )
    opt = demo_options(context.params)
    assert (opt.rounds, opt.task, opt.serve, opt.participants) == (2, "t9", False, ["org1/trainer"])
    assert opt.agent_args == ["--dp-clip", "2.0", "--dp-noise", "1.0"]
    assert demo_options(demo.make_context("demo", []).params).serve is True


def test_every_options_object_takes_what_its_command_parses(tmp_path: Path) -> None:
    from fabricml.cli.agent import AgentRun
    from fabricml.cli.agent import run as agent_run
    from fabricml.cli.attest import ServeOptions, serve
    from fabricml.cli.tx import Invocation, submit

    data = tmp_path / "d.csv"
    data.write_text("x,label\n1,0\n")
    parsed = agent_run.make_context("run", ["--task", "t", "--data", str(data), "--dp-clip", "1"]).params
    assert AgentRun(**parsed).dp_clip == 1.0
    assert ServeOptions(**serve.make_context("serve", ["--model", "m@1"]).params).model_ref == "m@1"
    call = Invocation(**submit.make_context("submit", ["Registry:Get", "m@1"]).params)
    assert call.contract_and_function() == ("Registry", "Get") and call.args == ("m@1",)


def test_starting_the_shell_loads_neither_pytorch_nor_the_registry_schemas() -> None:
    # Every `fabricml` command paid for them at start (about 10 s of CPU on a loaded CI
    # machine, many times per test): only the commands that use them may load them.
    probe = (
        "import sys, fabricml.cli.root; print(sorted(m for m in ('torch', 'jsonschema') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout


def test_a_signed_command_reads_org_identity_and_its_arguments_in_any_order(tmp_path: Path) -> None:
    from fabricml.cli.fed import settle
    from fabricml.cli.token import balance

    for args in (
        ["t1", "3", "--org", "org2", "--identity", "a2"],
        ["--identity", "a2", "t1", "--org", "org2", "3"],
    ):
        params = settle.make_context("settle", args).params
        assert params == {"org": "org2", "identity": "a2", "task": "t1", "round_": 3}, (args, params)
    assert balance.make_context("balance", ["Org1MSP"]).params == {
        "org": "org1",
        "identity": "auditor",
        "msp_id": "Org1MSP",
    }
    result = CliRunner().invoke(
        main, ["token", "balance", "--topology", str(tmp_path / "none.yaml"), "Org1MSP"]
    )
    assert result.exit_code == 1 and "none.yaml" in result.output, result.output
