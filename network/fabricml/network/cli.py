"""`fabricml network ...`: bring the consortium up and down, inspect it, deploy chaincode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from . import binaries, compose
from .binaries import REPO_ROOT, BuildError
from .layout import default_state_dir
from .network import Network, NetworkError, json_status
from .peercli import FabricCommandError
from .topology import TopologyError, load

DEFAULT_TOPOLOGY = REPO_ROOT / "network" / "topology.yaml"
console = Console(stderr=True)


def _network(topology: Path | None, state_dir: Path | None) -> Network:
    path = topology or Path(os.environ.get("FABRICML_TOPOLOGY", DEFAULT_TOPOLOGY))
    topo = load(path)
    return Network(topo, state_dir or default_state_dir(topo.name), console=console)


def _fail(exc: Exception) -> None:
    console.print(f"[red]error:[/] {exc}")
    sys.exit(1)


topology_option = click.option(
    "--topology",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Topology file (default: network/topology.yaml or $FABRICML_TOPOLOGY).",
)
state_option = click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where identities, ledgers and logs live (default: .fabricml/<name> or $FABRICML_HOME/<name>).",
)


@click.group("network")
def network_group() -> None:
    """Run the consortium's Fabric network on this machine."""


@network_group.command()
@topology_option
@state_option
def up(topology: Path | None, state_dir: Path | None) -> None:
    """Start CAs, orderers, peers and chaincode servers; create the channel and deploy on first run."""
    try:
        net = _network(topology, state_dir)
        started = time.monotonic()
        if net.up():
            console.print(
                f"[green]network {net.topology.name!r} is up[/] in {time.monotonic() - started:.0f}s: "
                f"{len(net.topology.organizations)} orgs, channel {net.topology.channel!r}, "
                f"{net.topology.consensus}; state in {net.layout.root}"
            )
    except (NetworkError, BuildError, TopologyError, FabricCommandError) as exc:
        _fail(exc)


@network_group.command()
@topology_option
@state_option
def down(topology: Path | None, state_dir: Path | None) -> None:
    """Stop every process the network started; ledgers and identities are kept."""
    try:
        stopped = _network(topology, state_dir).down()
    except (NetworkError, TopologyError) as exc:
        _fail(exc)
    console.print(f"stopped {len(stopped)} process(es)" + (f": {', '.join(stopped)}" if stopped else ""))


@network_group.command()
@topology_option
@state_option
@click.confirmation_option(prompt="Remove every ledger, identity and log of this network?")
def clean(topology: Path | None, state_dir: Path | None) -> None:
    """Stop the network and delete its state directory."""
    try:
        net = _network(topology, state_dir)
        net.clean()
    except (NetworkError, TopologyError) as exc:
        _fail(exc)
    console.print(f"removed {net.layout.root}")


@network_group.command()
@topology_option
@state_option
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def status(topology: Path | None, state_dir: Path | None, as_json: bool) -> None:
    """Health, block height and committed chaincode of every node."""
    try:
        statuses = _network(topology, state_dir).status()
    except (NetworkError, TopologyError) as exc:
        _fail(exc)
    if as_json:
        click.echo(json_status(statuses))
        return
    table = Table("node", "kind", "org", "running", "healthy", "height", "chaincode")
    for s in statuses:
        table.add_row(
            s.name,
            s.kind,
            s.org,
            "yes" if s.running else "[red]no[/]",
            "yes" if s.healthy else "[red]no[/]",
            "" if s.height is None else str(s.height),
            s.extra.get("chaincode", ""),
        )
    Console().print(table)


@network_group.command()
@topology_option
@state_option
@click.option("--version", "version", required=True, help="New chaincode version, e.g. 1.1.")
def deploy(topology: Path | None, state_dir: Path | None, version: str) -> None:
    """Upgrade the chaincode: build, install, approve and commit with the next sequence."""
    try:
        d = _network(topology, state_dir).deploy(version)
    except (NetworkError, BuildError, TopologyError, FabricCommandError) as exc:
        _fail(exc)
    console.print(f"[green]committed[/] version {d.version} at sequence {d.sequence} ({d.package_id})")


@network_group.command()
@topology_option
@state_option
@click.argument("node", required=False)
@click.option("-n", "--lines", default=40, show_default=True, help="Lines to show.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
def logs(topology: Path | None, state_dir: Path | None, node: str | None, lines: int, follow: bool) -> None:
    """Show a node's log, or list the log files."""
    net = _network(topology, state_dir)
    if node is None:
        for n in net.nodes():
            click.echo(f"{n.name:28} {net.layout.log(n.name)}")
        return
    path = net.layout.log(node)
    if not path.exists():
        _fail(NetworkError(f"no log for {node!r} at {path}"))
    argv = ["tail", "-n", str(lines), *(["-f"] if follow else []), str(path)]
    subprocess.run(argv, check=False)


@network_group.command("stop-node")
@topology_option
@state_option
@click.argument("node")
def stop_node(topology: Path | None, state_dir: Path | None, node: str) -> None:
    """Stop one node (e.g. to test fault tolerance)."""
    try:
        stopped = _network(topology, state_dir).stop_node(node)
    except NetworkError as exc:
        _fail(exc)
    console.print(f"{node}: {'stopped' if stopped else 'was not running'}")


@network_group.command("start-node")
@topology_option
@state_option
@click.argument("node")
def start_node(topology: Path | None, state_dir: Path | None, node: str) -> None:
    """Start one stopped node and wait until it is healthy."""
    try:
        _network(topology, state_dir).start_node(node)
    except NetworkError as exc:
        _fail(exc)
    console.print(f"{node}: running")


@network_group.command()
@topology_option
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def ports(topology: Path | None, as_json: bool) -> None:
    """The port plan: every port each node listens on."""
    try:
        topo = load(topology or DEFAULT_TOPOLOGY)
    except TopologyError as exc:
        _fail(exc)
    plan = topo.named_ports()
    if as_json:
        click.echo(json.dumps(plan, indent=2))
        return
    for name, port in plan.items():
        click.echo(f"{port:6} {name}")


@network_group.command("compose")
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
    try:
        topo = load(path)
    except TopologyError as exc:
        _fail(exc)
    try:
        source = str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        source = str(path)
    text = compose.render(topo, source)
    if check:
        if not output.exists() or output.read_text() != text:
            _fail(NetworkError(f"{output} is out of date; run `fabricml network compose`"))
        console.print(f"{output} matches {source}")
        return
    output.write_text(text)
    console.print(f"wrote {output}")


@network_group.command()
def build() -> None:
    """Build the pinned Fabric and Fabric CA binaries into the cache (skipped when present)."""
    try:
        b = binaries.ensure(console)
    except BuildError as exc:
        _fail(exc)
    console.print(
        f"Fabric {binaries.FABRIC_VERSION} and Fabric CA {binaries.FABRIC_CA_VERSION} ready in {b.bin}"
    )


@network_group.command()
@topology_option
@state_option
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def demo(topology: Path | None, state_dir: Path | None, as_json: bool) -> None:
    """Submit a transaction with Fabric's peer CLI through one org and read it back through another."""
    try:
        net = _network(topology, state_dir)
        writer, reader = (
            net.topology.organizations[1 % len(net.topology.organizations)],
            net.topology.organizations[-1],
        )
        name = f"{writer.name} (renamed {time.strftime('%H:%M:%S')})"
        with console.status(f"submitting Consortium:Join through {writer.peer_name} …"):
            net.invoke(writer, "Consortium:Join", name)
        members = json.loads(net.query(reader, "Consortium:ListMembers"))
    except (NetworkError, TopologyError, FabricCommandError) as exc:
        _fail(exc)
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
