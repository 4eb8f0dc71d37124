"""The application object every `fabricml` command receives, and the one place that
turns known errors into messages and exit codes.

The shared options `--topology`, `--state-dir` and `--json` are parsed once into an
`App` (click's context object). They may be given before the sub-command
(`fabricml --json model show m@1`) or after it, as before (`fabricml model show m@1
--json`): `@shared_options` adds the same three options to a command and stores them in
the one App. To adopt it in a command group of its own (e.g. `fabricml network`):
decorate each command with `@shared_options` and `@pass_app`, and use `app.network`,
`app.profile(org)`, `app.say(...)` and `app.emit(...)` instead of local copies."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, NoReturn, TypeVar, cast

import click
from rich.console import Console
from rich.text import Text

from fabricml.contracts import RecordError
from fabricml.gateway import CommitError, GatewayError
from fabricml.gateway.profile import ConnectionProfile
from fabricml.network.cli import DEFAULT_TOPOLOGY
from fabricml.network.layout import default_state_dir
from fabricml.network.network import Network
from fabricml.network.topology import load

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class App:
    """The network a command works on, how it talks, and where its output goes."""

    topology_file: Path | None = None  # --topology, else $FABRICML_TOPOLOGY, else network/topology.yaml
    state_dir: Path | None = None  # --state-dir, else the topology's default state directory
    as_json: bool = False  # --json: machine-readable output on stdout
    console: Console = field(default_factory=lambda: Console(stderr=True, highlight=False))  # messages
    results: Console = field(default_factory=lambda: Console(highlight=False))  # tables and trees: stdout

    @cached_property
    def network(self) -> Network:
        """The consortium's network; raises TopologyError for a bad topology file."""
        path = self.topology_file or Path(os.environ.get("FABRICML_TOPOLOGY", DEFAULT_TOPOLOGY))
        topology = load(path)
        return Network(topology, self.state_dir or default_state_dir(topology.name), console=self.console)

    def profile(self, org: str) -> ConnectionProfile:
        """An org's connection profile; raises TopologyError for an unknown org, ValueError
        when the network was never brought up."""
        net = self.network
        return ConnectionProfile.load(net.layout.profile(net.topology.org(org)))

    def say(self, text: str) -> None:
        """A line for the user on stderr, printed as is: no markup, so `[a-z]` survives."""
        self.console.print(Text(text), soft_wrap=True)

    def emit(self, data: Any) -> None:
        """A result on stdout, as JSON."""
        click.echo(json.dumps(data, indent=2, sort_keys=True))

    def answer(self, data: Any, *lines: str) -> None:
        """A command's result: `data` as JSON with --json, else `lines` for a person."""
        if self.as_json:
            self.emit(data)
        else:
            for line in lines:
                self.say(line)


def _store(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value not in (None, False):  # given on this command line: later ones win
        setattr(ctx.ensure_object(App), str(param.name), value)
    return value


def _shared(*names: str, help: str, **kind: Any) -> Callable[[F], F]:
    return click.option(*names, expose_value=False, callback=_store, help=help, **kind)


_SHARED = (
    _shared("--topology", "topology_file", type=click.Path(path_type=Path, dir_okay=False),
            help="Topology file (default: $FABRICML_TOPOLOGY or network/topology.yaml)."),
    _shared("--state-dir", type=click.Path(path_type=Path, file_okay=False),
            help="Network state directory (default: .fabricml/<name> or $FABRICML_HOME/<name>)."),
    _shared("--json", "as_json", is_flag=True, help="Print machine-readable JSON."),
)  # fmt: skip


def shared_options(f: F) -> F:
    """--topology, --state-dir and --json, stored in the App (see the module docstring)."""
    for option in _SHARED:
        f = option(f)
    return f


def pass_app(f: Callable[..., Any]) -> Callable[..., Any]:
    """Hand the command the App as its first argument."""

    @functools.wraps(f)
    def with_app(*args: Any, **kwargs: Any) -> Any:
        return f(click.get_current_context().ensure_object(App), *args, **kwargs)

    return with_app


def org_option(default: str = "org1", help: str = "Organization to act for.") -> Callable[[F], F]:
    return click.option("--org", default=default, show_default=True, help=help)


_SIGNS = "Which of the org's identities signs."


def identity_option(default: str, help: str = _SIGNS) -> Callable[[F], F]:
    return click.option("--identity", default=default, show_default=True, help=help)


def signer_options(default_identity: str, identity_help: str = _SIGNS) -> Callable[[F], F]:
    """The shared options, --org and --identity, for a command that one of an org's
    identities signs; it receives the App first, then `org` and `identity` by name."""

    def decorate(f: F) -> F:
        f = cast(F, pass_app(f))
        f = identity_option(default_identity, identity_help)(f)
        return shared_options(org_option()(f))

    return decorate


# ---- errors -------------------------------------------------------------------------


class CommandError(click.ClickException):
    """A failure the command explains itself; exit code 1."""


# Errors a command may meet that say what is wrong in their message; printed, exit code 1.
_KNOWN = (
    ("fabricml.federation.agent", "AgentError"),
    ("fabricml.federation.agent_state", "StateError"),
    ("fabricml.demo.agents", "DemoError"),
    ("fabricml.network.identities", "CAError"),
    ("fabricml.network.network", "NetworkError"),
    ("fabricml.network.binaries", "BuildError"),
    ("fabricml.network.peercli", "FabricCommandError"),
    ("fabricml.registry.artifacts", "ArtifactError"),
    ("fabricml.registry.manifest", "ManifestError"),
    ("fabricml.registry.service", "ModelVerificationError"),
)


def _known_errors() -> tuple[type[BaseException], ...]:
    """Only from modules already imported: an error of a module never loaded cannot have
    been raised, and loading one (torch, jsonschema) only to print a message is slow."""
    found: list[type[BaseException]] = [
        GatewayError,
        CommitError,
        RecordError,
        ValueError,
        TimeoutError,
        OSError,
    ]
    for module, name in _KNOWN:
        if module in sys.modules:
            found.append(getattr(sys.modules[module], name))
    return tuple(found)


def gateway_error_json(exc: GatewayError) -> dict[str, Any]:
    return {
        "error": type(exc).__name__,
        "message": str(exc).splitlines()[0],
        "transactionId": exc.transaction_id,
        "details": [{"address": d.address, "mspId": d.msp_id, "message": d.message} for d in exc.details],
    }


def commit_error_json(exc: CommitError) -> dict[str, Any]:
    return {"error": "CommitError", "transactionId": exc.transaction_id, "status": exc.code_name}


def report(app: App, exc: BaseException) -> NoReturn:
    """Say what went wrong, as is (no markup), and exit 1; with --json a ledger error is
    also printed as JSON on stdout."""
    if app.as_json and isinstance(exc, GatewayError):
        app.emit(gateway_error_json(exc))
    elif app.as_json and isinstance(exc, CommitError):
        app.emit(commit_error_json(exc))
    message = str(exc) or type(exc).__name__
    app.console.print(Text.assemble(("error: ", "red"), message), soft_wrap=True)
    sys.exit(1)


class Shell(click.Group):
    """The root group: runs a command and maps the errors every command may meet."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CommandError as exc:
            report(ctx.ensure_object(App), exc)
        except _known_errors() as exc:
            report(ctx.ensure_object(App), exc)


def show_bytes(value: bytes) -> str:
    """Text as text; anything else as hex, so output never breaks a terminal."""
    try:
        return value.decode()
    except UnicodeDecodeError:
        return "0x" + value.hex()
