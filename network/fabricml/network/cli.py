"""`fabricml network ...`: the local consortium (one site per organization on this machine)."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.table import Table

from . import binaries, compose
from .binaries import REPO_ROOT, BuildError
from .clierrors import reports
from .consortium import Consortium
from .layout import default_state_dir
from .peercli import FabricCommandError
from .status import NodeStatus, json_status
from .supervisor import NetworkError
from .topology import TopologyError, load
from .watch import Policy

DEFAULT_TOPOLOGY = REPO_ROOT / "network" / "topology.yaml"
console = Console(stderr=True)
KNOWN_ERRORS = (NetworkError, BuildError, TopologyError, FabricCommandError, ValueError)


def _network(topology: Path | None, state_dir: Path | None) -> Consortium:
    path = topology or Path(os.environ.get("FABRICML_TOPOLOGY", DEFAULT_TOPOLOGY))
    topo = load(path)
    return Consortium(topo, state_dir or default_state_dir(topo.name), console=console)


topology_option = click.option(
    "--topology",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Topology file (default: network/topology.yaml or $FABRICML_TOPOLOGY).",
)
state_option = click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where the sites live (default: .fabricml/<name> or $FABRICML_HOME/<name>).",
)


def on_consortium(f: Callable[..., None]) -> Callable[..., None]:
    """--topology and --state-dir; the command receives the Consortium they name as its
    first argument, and the known errors it raises are printed (exit code 1)."""

    @reports(console, *KNOWN_ERRORS)
    @topology_option
    @state_option
    @functools.wraps(f)
    def command(topology: Path | None, state_dir: Path | None, **given: Any) -> None:
        f(_network(topology, state_dir), **given)

    return command


@click.group("network")
def network_group() -> None:
    """The local consortium: every organization of the topology as its own site on this machine."""


watch_options = [
    click.option("--max-restarts", default=3, show_default=True,
                 help="Restarts of one node within --window before the watch stops every site."),
    click.option("--window", default=600.0, show_default=True, help="Seconds over which restarts count."),
]  # fmt: skip


def with_watch_options(f: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(watch_options):
        f = option(f)
    return f


@network_group.command()
@on_consortium
@click.option("--watch", "then_watch", is_flag=True, help="Then watch the nodes (`network watch`).")
@with_watch_options
def up(net: Consortium, then_watch: bool, max_restarts: int, window: float) -> None:
    """Found the consortium through the site commands (first run), or restart it."""
    started = time.monotonic()
    if net.up():
        t = net.topology
        console.print(
            f"[green]network {t.name!r} is up[/] in {time.monotonic() - started:.0f}s: "
            f"{len(t.organizations)} sites, channel {t.channel!r}, {t.consensus}; "
            f"state in {net.layout.root}"
        )
    if then_watch:
        _watch(net, Policy(max_restarts, window))


@network_group.command()
@on_consortium
@with_watch_options
def watch(net: Consortium, max_restarts: int, window: float) -> None:
    """Watch every node: one that dies is named with why, restarted and followed until it
    caught up; one that keeps dying or will not start stops every site. Ctrl-C stops watching."""
    if not net.is_up():
        raise NetworkError(f"network {net.topology.name!r} is not up; run `fabricml network up` first")
    _watch(net, Policy(max_restarts, window))


def _watch(net: Consortium, policy: Policy) -> NoReturn:
    def say(line: str) -> None:
        console.print(f"{time.strftime('%H:%M:%S')} {line}", highlight=False, markup=False, soft_wrap=True)

    w = net.watch(say, policy)

    def stop(signum: int, frame: object) -> None:
        w.stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    sys.exit(w.run())


@network_group.command()
@on_consortium
def down(net: Consortium) -> None:
    """Stop every process of every site; ledgers and identities are kept."""
    stopped = net.down()
    console.print(f"stopped {len(stopped)} process(es)" + (f": {', '.join(stopped)}" if stopped else ""))


@network_group.command()
@on_consortium
@click.confirmation_option(prompt="Remove every ledger, identity and log of this network?")
def clean(net: Consortium) -> None:
    """Stop the network and delete its state directory."""
    net.clean()
    console.print(f"removed {net.layout.root}")


def status_table(statuses: list[NodeStatus]) -> Table:
    table = Table("node", "kind", "org", "running", "healthy", "height", "behind", "restarts", "chaincode")
    for s in statuses:
        behind = "" if s.behind is None else (f"[yellow]{s.behind}[/]" if s.behind else "0")
        restarts = f"{s.restarts} (last {s.last_restart})" if s.restarts else ""
        table.add_row(
            s.name, s.kind, s.org, "yes" if s.running else "[red]no[/]", "yes" if s.healthy else "[red]no[/]",
            "" if s.height is None else str(s.height), behind, restarts, s.extra.get("chaincode", ""),
        )  # fmt: skip
    return table


@network_group.command()
@on_consortium
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def status(net: Consortium, as_json: bool) -> None:
    """Health, block height (and how far behind the highest of its kind), restarts by
    `network watch` and committed chaincode of every node."""
    statuses = net.status()
    if as_json:
        click.echo(json_status(statuses))
        return
    Console().print(status_table(statuses))


@network_group.command()
@on_consortium
@click.option("--version", "version", required=True, help="New chaincode version, e.g. 1.1.")
def deploy(net: Consortium, version: str) -> None:
    """Upgrade the chaincode: every site approves the next sequence, then it is committed."""
    d = net.deploy(version)
    console.print(f"[green]committed[/] {d.chaincode} {d.version} at sequence {d.sequence}")


@network_group.command()
@on_consortium
@click.argument("node", required=False)
@click.option("-n", "--lines", default=40, show_default=True, help="Lines to show.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
def logs(net: Consortium, node: str | None, lines: int, follow: bool) -> None:
    """Show a node's log, or list the log files."""
    if node is None:
        for n in net.nodes():
            click.echo(f"{n.name:28} {net.layout.log(n.name)}")
        return
    path = net.layout.log(node)
    if not path.exists():
        raise NetworkError(f"no log for {node!r} at {path}")
    argv = ["tail", "-n", str(lines), *(["-f"] if follow else []), str(path)]
    subprocess.run(argv, check=False)


@network_group.command("stop-node")
@on_consortium
@click.argument("node")
def stop_node(net: Consortium, node: str) -> None:
    """Stop one node (e.g. to test fault tolerance)."""
    stopped = net.stop_node(node)
    console.print(f"{node}: {'stopped' if stopped else 'was not running'}")


@network_group.command("start-node")
@on_consortium
@click.argument("node")
def start_node(net: Consortium, node: str) -> None:
    """Start one stopped node and wait until it is healthy."""
    net.start_node(node)
    console.print(f"{node}: running")


@network_group.command()
@reports(console, TopologyError)
@topology_option
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def ports(topology: Path | None, as_json: bool) -> None:
    """The port plan: every address each node listens on."""
    topo = load(topology or DEFAULT_TOPOLOGY)
    plan = {
        name: f"{org.host}:{port}" for org in topo.organizations for name, port in org.named_ports().items()
    }
    if as_json:
        click.echo(json.dumps(plan, indent=2))
        return
    for name, address in plan.items():
        click.echo(f"{address:22} {name}")


@network_group.command("compose")
@reports(console, TopologyError, NetworkError)
@topology_option
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=REPO_ROOT / "docker-compose-fabric.yaml",
    show_default=True,
)
@click.option("--check", is_flag=True, help="Fail if the file differs from what the topology gives.")
def compose_cmd(topology: Path | None, output: Path, check: bool) -> None:
    """Write docker-compose-fabric.yaml from the topology (official Fabric images)."""
    path = topology or DEFAULT_TOPOLOGY
    topo = load(path)
    try:
        source = str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        source = str(path)
    text = compose.render(topo, source)
    if check:
        if not output.exists() or output.read_text() != text:
            raise NetworkError(f"{output} is out of date; run `fabricml network compose`")
        console.print(f"{output} matches {source}")
        return
    output.write_text(text)
    console.print(f"wrote {output}")


@network_group.command()
@reports(console, BuildError, OSError)
@click.option(
    "--install-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Also copy the binaries into DIR/<version>/ (read-only for everyone) for sites run by other users.",
)
def build(install_dir: Path | None) -> None:
    """Build the pinned Fabric and Fabric CA binaries into the cache (skipped when present)."""
    b = binaries.ensure(console)
    if install_dir is not None:
        b = binaries.install_shared(b, install_dir)
    console.print(
        f"Fabric {binaries.FABRIC_VERSION} and Fabric CA {binaries.FABRIC_CA_VERSION} ready in {b.bin}"
    )


@network_group.command()
@on_consortium
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def demo(net: Consortium, as_json: bool) -> None:
    """Submit a transaction through one org's Gateway and read it back through another's."""
    orgs = net.topology.organizations
    writer, reader = orgs[1 % len(orgs)], orgs[-1]
    name = f"{writer.name} (renamed {time.strftime('%H:%M:%S')})"
    with console.status(f"submitting Consortium:Join through {writer.peer_name} …"):
        net.invoke(writer, "Consortium:Join", name)
    members = json.loads(net.query(reader, "Consortium:ListMembers"))
    if as_json:
        click.echo(json.dumps({"writer": writer.name, "reader": reader.name, "members": members}, indent=2))
        return
    console.print(
        f"[green]✓[/] {writer.name} renamed itself to {name!r}; read back through {reader.peer_name}:"
    )
    table = Table("MSP ID", "display name", "joined at", "joined in transaction")
    for m in members:
        table.add_row(m["mspId"], m["displayName"], m["joinedAt"], m["joinedTxId"][:16] + "…")
    Console().print(table)
    console.print(
        "next: `fabricml network status`, `fabricml network logs <node>`, "
        "`fabricml network down` (keeps ledgers) or `fabricml network clean`."
    )
