"""The local consortium: every organization of a topology as its own site on this machine,
each on its own address, founded through the same commands separate operators run
(`site init`, `site export`/`import`, `consortium create`, `site join`, `chaincode commit`)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from fabricml.gateway import CommitError, sync

from . import binaries as binaries_mod
from . import founding, joining, readiness, siteup, upgrade
from .binaries import Binaries
from .channeltx import ChannelSettings
from .compat import ConsortiumLifecycle, ConsortiumTools, MergedProcesses
from .layout import Layout
from .processes import wait_until
from .site import Site, SiteError, on_each
from .sitefile import render as render_site_file
from .status import NodeStatus, fill_behind, orderer_height, peer_height, site_status
from .steps import command
from .supervisor import HEALTH_TIMEOUT, KINDS, NetworkError, Node
from .topology import Organization, Topology, load
from .watch import Group, Policy, Watch


class Consortium:
    """The consortium described by one topology, with its sites under one directory."""

    def __init__(
        self,
        topology: Topology,
        state_dir: Path,
        binaries: Binaries | None = None,
        console: Console | None = None,
    ) -> None:
        self.topology = topology
        self.layout = Layout(state_dir.absolute())
        self.binaries = binaries or binaries_mod.default_binaries()
        self.console = console or Console(stderr=True)
        self.sites = {
            o.name: Site(o, self.layout.site(o).root, self.binaries, self.console)
            for o in topology.organizations
        }
        self.tools = ConsortiumTools(self)
        self.lifecycle = ConsortiumLifecycle(self)
        self.processes = MergedProcesses(self)

    @classmethod
    def from_state(cls, state_dir: Path, console: Console | None = None) -> Consortium:
        """The consortium that was brought up in state_dir, with the topology it used."""
        layout = Layout(state_dir)
        if not layout.topology_copy.exists():
            raise NetworkError(f"no network state in {state_dir}; run `fabricml network up` first")
        return cls(load(layout.topology_copy), state_dir, console=console)

    # ---- facts ----------------------------------------------------------------------

    def site(self, org: Organization | str) -> Site:
        return self.sites[org if isinstance(org, str) else org.name]

    @property
    def founder(self) -> Site:
        return self.site(self.topology.organizations[0])

    @property
    def initialized(self) -> bool:
        return all(s.joined is not None and s.deployment is not None for s in self.sites.values())

    def nodes(self) -> list[Node]:
        """Every process, kind by kind (all CAs, then all orderers, ...), as `up` starts them."""
        every = [n for s in self.sites.values() for n in s.nodes()]
        return sorted(every, key=lambda n: KINDS.index(n.kind))

    def node(self, name: str) -> Node:
        for n in self.nodes():
            if n.name == name:
                return n
        raise NetworkError(f"no node named {name!r}; nodes: {', '.join(n.name for n in self.nodes())}")

    def is_up(self) -> bool:
        return self.initialized and all(s.is_up() for s in self.sites.values())

    @property
    def settings(self) -> ChannelSettings:
        t = self.topology
        return ChannelSettings(t.channel, t.consensus, t.endorsement, t.batch_timeout_ms)

    # ---- bring-up -------------------------------------------------------------------

    def check_ports(self) -> None:
        for s in self.sites.values():
            s.check_ports()

    def up(self) -> bool:
        """Start the consortium; False if it was already up. Stops what it started on failure."""
        if self.is_up():
            self.console.print(f"network {self.topology.name!r} is already up ({self.layout.root})")
            return False
        running = [n for s in self.sites.values() for n in s.supervisor.running()]
        if running:
            raise NetworkError(
                f"network {self.topology.name!r} is partly running ({', '.join(sorted(running))}); "
                "run `fabricml network down` first"
            )
        self.check_ports()
        binaries_mod.ensure(self.console, self.binaries)
        try:
            if self.initialized:
                self._restart()
            else:
                self._first_start()
        except Exception:
            self.down()
            raise
        return True

    def _first_start(self) -> None:
        if self.layout.root.exists() and any(self.layout.root.iterdir()):
            shutil.rmtree(self.layout.root)  # a half-finished earlier bring-up: start clean
        self.layout.exchange.mkdir(parents=True)
        if self.topology.source is None:
            raise NetworkError("the topology must come from a file so later commands can find it")
        shutil.copy(self.topology.source, self.layout.topology_copy)
        self._init_sites()
        self._exchange_bundles()
        block, definition = self._create()
        self._join(block, definition)
        command(self.console, "chaincode", "commit", "--state-dir", self._rel(self.founder))
        upgrade.commit(self.founder)
        self._publish_profiles()
        self._ready_and_serve()

    def _rel(self, site: Site) -> str:
        return str(site.layout.root)

    def _init_sites(self) -> None:
        for org in self.topology.organizations:
            path = self.layout.site_file(org)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render_site_file(org))
            command(
                self.console,
                "site",
                "init",
                "--site-file",
                str(path),
                "--state-dir",
                self._rel(self.site(org)),
            )
        on_each(list(self.sites.values()), lambda s: s.init())

    def _exchange_bundles(self) -> None:
        """Each site exports its bundle; every other site checks and imports it."""
        bundles = {}
        for s in self.sites.values():
            out = self.layout.exchange / f"{s.org.name}.bundle.json"
            command(self.console, "site", "export", "--state-dir", self._rel(s), "--out", str(out))
            bundles[s.org.name] = (out, s.export(out).bundle.fingerprint)
        for s in self.sites.values():
            for name, (path, fingerprint) in bundles.items():
                if name != s.org.name:
                    command(self.console, "site", "import", str(path), "--fingerprint", fingerprint,
                            "--state-dir", self._rel(s))  # fmt: skip
                    s.import_bundle(path, fingerprint)

    def _create(self) -> tuple[Path, Path]:
        f, t = self.founder, self.topology
        members = [self.layout.exchange / f"{o.name}.bundle.json" for o in t.organizations[1:]]
        definition = founding.Definition(t.chaincode_name, t.chaincode_version, 1)
        argv = ["consortium", "create", "--state-dir", self._rel(f)]
        for m in members:
            argv += ["--member", str(m)]
        command(self.console, *argv, "--channel", t.channel, "--consensus", t.consensus, "--endorsement",
                t.endorsement, "--batch-timeout", f"{t.batch_timeout_ms}ms", "--chaincode", t.chaincode_name,
                "--version", t.chaincode_version, "--out", str(self.layout.exchange))  # fmt: skip
        return founding.create(f, members, self.settings, definition, self.layout.exchange)

    def _join(self, block: Path, definition_file: Path) -> None:
        definition = founding.Definition.load(definition_file)
        for s in self.sites.values():
            argv = ["site", "join", "--genesis", str(block), "--definition", str(definition_file)]
            command(self.console, *argv, "--state-dir", self._rel(s), "--yes")
        on_each(list(self.sites.values()), lambda s: joining.join(s, block, definition, lambda lines: True))

    def _publish_profiles(self) -> None:
        """profiles/<org>.json beside the sites, where clients of a local consortium read them."""
        self.layout.profiles.mkdir(parents=True, exist_ok=True)
        for s in self.sites.values():
            shutil.copy(s.layout.profile(s.org.name), self.layout.profile(s.org))

    def _ready_and_serve(self) -> None:
        for s in self.sites.values():
            command(self.console, "site", "up", "--state-dir", self._rel(s))
        sites = list(self.sites.values())
        on_each(sites, siteup.start_core)
        on_each(sites, siteup.ready)
        on_each(sites, siteup.start_services)
        on_each(sites, siteup.hold_every_list)  # every site came up, so every list was published

    def _restart(self) -> None:
        self._publish_profiles()
        self._ready_and_serve()

    def down(self) -> list[str]:
        """Stop every site's processes, clients of a node before the node; ledgers stay."""
        return [name for s in reversed(list(self.sites.values())) for name in s.down()]

    def clean(self) -> None:
        self.down()
        if self.layout.root.exists():
            shutil.rmtree(self.layout.root)

    # ---- chaincode --------------------------------------------------------------------

    def deploy(self, version: str) -> founding.Definition:
        """Upgrade: every site approves `version` as the next sequence, the founder commits,
        every site switches its server; state is kept."""
        sites = list(self.sites.values())
        for s in sites:
            command(self.console, "chaincode", "upgrade", "--version", version, "--state-dir", self._rel(s))
        on_each(sites, lambda s: upgrade.approve_upgrade(s, version))
        command(self.console, "chaincode", "commit", "--state-dir", self._rel(self.founder))
        definition = upgrade.commit(self.founder)
        on_each(sites, upgrade.activate)
        on_each(sites, readiness.heartbeat)
        return definition

    def invoke(self, org: Organization, function: str, *args: str, identity: str = "admin") -> str:
        """Submit a transaction through the org's Gateway (repeated while ordering is unavailable)
        and return once every running peer of the consortium has its block."""

        def call(c: sync.Contract) -> tuple[bytes, int]:
            result, commit = c.submit_async(function, *args)
            status = commit.status()
            if not status.successful:
                raise CommitError(status.transaction_id, status.code, status.code_name, status.block_number)
            return result, status.block_number

        result, block = readiness.gateway_call(self.site(org), call, identity, retry=readiness.transient)
        running = [s for s in self.sites.values() if s.supervisor.alive(s.org.peer_name)]
        if not wait_until(lambda: all((peer_height(s) or 0) > block for s in running), HEALTH_TIMEOUT):
            raise NetworkError(f"block {block} did not reach every running peer in {HEALTH_TIMEOUT:.0f}s")
        return result.decode()

    def query(self, org: Organization, function: str, *args: str, identity: str = "admin") -> str:
        return readiness.gateway_call(
            self.site(org), lambda c: c.evaluate_transaction(function, *args), identity
        ).decode()

    # ---- nodes and status -----------------------------------------------------------

    def start_node(self, name: str) -> None:
        n = self.node(name)
        self.site(n.org).supervisor.start([n])

    def stop_node(self, name: str) -> bool:
        return self.site(self.node(name).org).supervisor.stop(name)

    def status(self) -> list[NodeStatus]:
        every = [st for s in self.sites.values() for st in site_status(s)]
        fill_behind(every)
        return sorted(every, key=lambda st: KINDS.index(st.kind))

    def watch(self, say: Callable[[str], None], policy: Policy | None = None) -> Watch:
        """A watch over every site's nodes (run it with `.run()`)."""
        groups = [Group(s.supervisor, s.nodes, s.layout.restarts) for s in self.sites.values()]
        return Watch(groups, self.down, say, self.heights, policy or Policy())

    def heights(self, node: Node) -> tuple[int | None, int | None]:
        """A peer's (orderer's) block height and the highest of the other running peers (orderers)."""
        if node.kind == "peer":
            others = [s for s in self.sites.values() if s.org.name != node.org]
            seen = [peer_height(s) for s in others if s.supervisor.alive(s.org.peer_name)]
            return peer_height(self.site(node.org)), max((h for h in seen if h is not None), default=None)
        orderers = {o.name: o for o in self.topology.orderers}
        alive = [o for o in orderers.values() if self.site(o.org).supervisor.alive(o.name)]
        seen = [orderer_height(self.site(o.org), o) for o in alive if o.name != node.name]
        own = orderer_height(self.site(node.org), orderers[node.name])
        return own, max((h for h in seen if h is not None), default=None)

    def peer_height(self, org: Organization) -> int | None:
        return peer_height(self.site(org))

    def orderer_height(self, name: str) -> int | None:
        orderer = next(o for o in self.topology.orderers if o.name == name)
        return orderer_height(self.site(orderer.org), orderer)

    def gossip_peers(self, org: Organization) -> int | None:
        return readiness.gossip_peers(self.site(org))


__all__ = ["Consortium", "NetworkError", "SiteError"]
