"""A running consortium: bring-up, restart, stop, status and chaincode deployment."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from fabricml.gateway import CommitError, GatewayError, sync
from fabricml.gateway.profile import ConnectionProfile

from . import binaries as binaries_mod
from . import configgen
from .binaries import Binaries
from .chaincode import Deployment, Lifecycle, build_server, package
from .channelconfig import ChannelConfig
from .identities import CA_ADMIN, CertificateAuthority, IdentitySpec
from .layout import Layout
from .peercli import AdminTools, FabricCommandError, retry_transient
from .processes import ProcessTable, http_ok, port_in_use, wait_until
from .topology import HOST, Organization, Topology, load

HEALTH_TIMEOUT = 60.0


def api_identity(org: Organization) -> IdentitySpec:
    """The identity whose TLS certificate the org's admin API serves with."""
    return IdentitySpec("api", "client", tls=True, hosts=(org.api_name, HOST, "localhost"))


class NetworkError(RuntimeError):
    """Bring-up or an operation failed; the message names the node and its log."""


class PortBusyError(NetworkError):
    """A port of the topology is taken by another program."""


@dataclass(frozen=True)
class Node:
    """One long-lived process of the network."""

    name: str
    kind: str  # ca, orderer, peer, chaincode, artifacts, api
    org: Organization
    argv: list[str]
    env: dict[str, str]
    health_url: str | None = None  # an operations /healthz endpoint, or else
    listen_port: int | None = None  # a port that accepts connections once the node is ready
    cwd: Path | None = None

    def healthy(self) -> bool:
        if self.health_url is not None:
            return http_ok(self.health_url)
        return self.listen_port is not None and port_in_use(self.listen_port)


@dataclass
class NodeStatus:
    name: str
    kind: str
    org: str
    running: bool
    healthy: bool
    height: int | None = None
    extra: dict[str, str] = field(default_factory=dict)


class Network:
    """The consortium described by one topology, with its state in one directory."""

    def __init__(
        self,
        topology: Topology,
        state_dir: Path,
        binaries: Binaries | None = None,
        console: Console | None = None,
    ) -> None:
        self.topology = topology
        self.layout = Layout(state_dir.resolve())
        self.binaries = binaries or binaries_mod.default_binaries()
        self.console = console or Console(stderr=True)
        self.processes = ProcessTable(self.layout.processes)
        self.tools = AdminTools(topology, self.layout, self.binaries)
        self.lifecycle = Lifecycle(self.tools)

    @classmethod
    def from_state(cls, state_dir: Path, console: Console | None = None) -> Network:
        """The network that was brought up in state_dir, with the topology it used."""
        layout = Layout(state_dir)
        if not layout.topology_copy.exists():
            raise NetworkError(f"no network state in {state_dir}; run `fabricml network up` first")
        return cls(load(layout.topology_copy), state_dir, console=console)

    # ---- facts -------------------------------------------------------------------------

    @property
    def deployment_file(self) -> Path:
        return self.layout.root / "deployment.json"

    @property
    def deployment(self) -> Deployment | None:
        return Deployment.load(self.deployment_file)

    @property
    def initialized(self) -> bool:
        return self.deployment is not None

    def nodes(self) -> list[Node]:
        """Every process in start order: CAs, orderers, peers, chaincode servers."""
        base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
        nodes: list[Node] = []
        for org in self.topology.organizations:
            ca = CertificateAuthority(self.binaries, self.layout, org)
            nodes.append(
                Node(
                    org.ca_name,
                    "ca",
                    org,
                    ca.server_argv(),
                    {**base, **ca.server_env(ca.secret(CA_ADMIN, create=False))},
                    f"http://{HOST}:{org.port(1)}/healthz",
                )
            )
        for org in self.topology.organizations:
            for o in org.orderers:
                nodes.append(
                    Node(
                        o.name,
                        "orderer",
                        org,
                        [str(self.binaries.path("orderer"))],
                        {**base, **configgen.orderer_env(org, o, self.layout)},
                        f"http://{HOST}:{o.operations_port}/healthz",
                    )
                )
        for org in self.topology.organizations:
            env = configgen.peer_env(org, self.layout)
            builder_config = configgen.builder_config_file(org, self.layout)
            if builder_config.exists():
                env[configgen.BUILDER_CONFIG_ENV] = builder_config.read_text()
            nodes.append(
                Node(
                    org.peer_name,
                    "peer",
                    org,
                    [str(self.binaries.path("peer")), "node", "start"],
                    {**base, **env},
                    f"http://{HOST}:{org.peer_operations_port}/healthz",
                )
            )
        deployment = self.deployment
        if deployment is not None:
            for org in self.topology.organizations:
                env = configgen.chaincode_env(org, self.layout, deployment.package_id)
                nodes.append(
                    Node(
                        org.chaincode_name, "chaincode", org, [deployment.binary], {**base, **env},
                        listen_port=org.chaincode_port,
                    )
                )  # fmt: skip
        for org in self.topology.organizations:
            nodes.append(Node(org.artifacts_name, "artifacts", org, self._artifacts_argv(org), base,
                              listen_port=org.artifacts_port))  # fmt: skip
        for org in self.topology.organizations:
            argv = [sys.executable, "-m", "fabricml.api", "--org", org.name]
            argv += ["--state-dir", str(self.layout.root)]
            nodes.append(Node(org.api_name, "api", org, argv, base, listen_port=org.api_port))
        return nodes

    def _start_apis(self) -> None:
        """Each org's admin API, with a TLS server certificate from the org's CA (issued once)."""
        with self._step("start each organization's admin API and dashboard (mutual TLS)"):
            for org in self.topology.organizations:
                if not (self.layout.tls(org, "api") / "server.crt").exists():
                    ca = CertificateAuthority(self.binaries, self.layout, org)
                    ca.register(api_identity(org))
                    ca.enroll(api_identity(org))
            self._start_kind("api")

    def _artifacts_argv(self, org: Organization) -> list[str]:
        """The org's artifact store, served to members over mutual TLS."""
        tls = self.layout.tls(org, "artifacts")
        argv = [
            sys.executable, "-m", "fabricml.registry.artifact_server",
            "--root", str(self.layout.artifact_store(org)), "--port", str(org.artifacts_port),
            "--cert", str(tls / "server.crt"), "--key", str(tls / "server.key"),
            "--own-ca", str(self.layout.ca_cert(org)),
        ]  # fmt: skip
        for member in self.topology.organizations:
            argv += ["--member-ca", str(self.layout.ca_cert(member))]
            # The CA's revocation list, which `gencrl` (the API's start and every revoke) rewrites.
            argv += ["--crl", str(self.layout.ca_home(member) / "registrar" / "msp" / "crls" / "crl.pem")]
        return argv

    def node(self, name: str) -> Node:
        for n in self.nodes():
            if n.name == name:
                return n
        raise NetworkError(f"no node named {name!r}; nodes: {', '.join(n.name for n in self.nodes())}")

    def is_up(self) -> bool:
        nodes = self.nodes()
        return self.initialized and all(self.processes.alive(n.name) for n in nodes)

    # ---- lifecycle ---------------------------------------------------------------------

    def up(self) -> bool:
        """Start the network; False if it was already up. Stops what it started on failure."""
        if self.is_up():
            self.console.print(f"network {self.topology.name!r} is already up ({self.layout.root})")
            return False
        running = self.processes.running()
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
            self.processes.stop_all()
            raise
        return True

    def check_ports(self) -> None:
        busy = [(name, port) for name, port in self.topology.named_ports().items() if port_in_use(port)]
        if busy:
            listing = ", ".join(f"{name} needs {HOST}:{port}" for name, port in busy)
            raise PortBusyError(f"ports already in use, nothing was started: {listing}")

    def _step(self, title: str) -> _Step:
        return _Step(self.console, title)

    def _first_start(self) -> None:
        if self.layout.root.exists() and any(self.layout.root.iterdir()):
            # A half-finished earlier bring-up: start from a clean state.
            shutil.rmtree(self.layout.root)
        self.layout.root.mkdir(parents=True, exist_ok=True)
        if self.topology.source is not None:
            shutil.copy(self.topology.source, self.layout.topology_copy)
        else:
            raise NetworkError("the topology must come from a file so later commands can find it")
        with self._step("start the organizations' certificate authorities"):
            for org in self.topology.organizations:
                CertificateAuthority(self.binaries, self.layout, org).secret(CA_ADMIN)
            self._start_kind("ca")
        with (
            self._step(
                "issue identities from each org's CA (admin, users, trainer, inference, auditor, nodes)"
            ),
            ThreadPoolExecutor(max_workers=len(self.topology.organizations)) as pool,
        ):
            list(
                pool.map(
                    lambda o: CertificateAuthority(self.binaries, self.layout, o).issue_all(),
                    self.topology.organizations,
                )
            )
        with self._step(f"generate configtx.yaml and the genesis block of channel {self.topology.channel!r}"):
            self._write_configs()
            self._genesis_block()
        with self._step(f"start {len(self.topology.orderers)} orderer(s) ({self.topology.consensus})"):
            self._start_kind("orderer")
        with self._step("join the orderers to the channel (osnadmin)"):
            for o in self.topology.orderers:
                self.tools.osnadmin(
                    o,
                    "channel",
                    "join",
                    "--channelID",
                    self.topology.channel,
                    "--config-block",
                    str(self.layout.genesis_block(self.topology.channel)),
                )
        with self._step("start the peers"):
            self._start_kind("peer")
        with self._step("join the peers to the channel"):
            for org in self.topology.organizations:
                self.tools.peer(
                    org, "channel", "join", "-b", str(self.layout.genesis_block(self.topology.channel))
                )
        with self._step("set each organization's anchor peer (channel config update)"):
            config = ChannelConfig(self.tools)
            for org in self.topology.organizations:
                config.set_anchor_peer(org)
        self.deploy(self.topology.chaincode_version)
        with self._step("record every organization as a consortium member"):
            for org in self.topology.organizations:
                self.invoke(org, "Consortium:Join", org.name)
        with self._step("start each organization's artifact store (mutual TLS)"):
            self._start_kind("artifacts")
        self._heartbeats()
        self._start_apis()

    def _restart(self) -> None:
        for kind in ("ca", "orderer", "peer", "chaincode", "artifacts"):
            with self._step(f"restart {kind} processes"):
                self._start_kind(kind)
        self._heartbeats()
        self._start_apis()

    def _heartbeats(self) -> None:
        """The network is up only when every peer's gossip knows all the others and every
        org gets a transaction endorsed (through its Gateway's discovery) and committed."""
        with self._step("wait until every peer's gossip sees the other organizations' peers"):
            others = len(self.topology.organizations) - 1
            for org in self.topology.organizations:
                if not wait_until(lambda o=org: self.gossip_peers(o) == others, HEALTH_TIMEOUT):  # type: ignore[misc]
                    raise NetworkError(
                        f"{org.peer_name} knows {self.gossip_peers(org)} of {others} other peers after "
                        f"{HEALTH_TIMEOUT:.0f}s; see its log: {self.layout.log(org.peer_name)}"
                    )
        with self._step("commit a heartbeat from every organization through its Gateway"):
            for org in self.topology.organizations:
                self._gateway_heartbeat(org)

    def _gateway_heartbeat(self, org: Organization) -> None:
        # Discovery learns which peers run a new chaincode version by gossip, a little after
        # the commit: until then the Gateway finds no endorsers, so retry for a while.
        profile = ConnectionProfile.load(self.layout.profile(org))
        identity, signer, hash_ = profile.identity("admin")
        deadline = time.monotonic() + HEALTH_TIMEOUT
        with profile.peer().sync_channel() as channel:
            contract = (
                sync.connect(channel, identity, signer, hash_)
                .get_network(self.topology.channel)
                .get_contract(self.topology.chaincode_name, "Consortium")
            )
            while True:
                try:
                    contract.submit_transaction("Heartbeat")
                    return
                except (GatewayError, CommitError) as exc:
                    if time.monotonic() > deadline:
                        raise NetworkError(
                            f"{org.name} could not commit a heartbeat through its Gateway: {exc}; "
                            f"see {self.layout.log(org.peer_name)}"
                        ) from exc
                    time.sleep(1)

    def gossip_peers(self, org: Organization) -> int | None:
        """How many other peers this org's peer knows on the channel (from its metrics)."""
        url = f"http://{HOST}:{org.peer_operations_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                text = resp.read().decode()
        except OSError:
            return None
        pattern = (
            rf'^gossip_membership_total_peers_known{{channel="{re.escape(self.topology.channel)}"}} (\d+)'
        )
        m = re.search(pattern, text, re.MULTILINE)
        return int(m.group(1)) if m else None

    def _write_configs(self) -> None:
        configgen.write_yaml(
            self.layout.config / "configtx.yaml", configgen.configtx(self.topology, self.layout)
        )
        core = configgen.core_yaml(self.binaries)
        for org in self.topology.organizations:
            configgen.write_yaml(self.layout.node_home(org.peer_name) / "core.yaml", core)
            configgen.write_json(
                configgen.builder_config_file(org, self.layout),
                configgen.chaincode_connection(org, self.layout),
                mode=0o600,
            )
            configgen.write_json(
                self.layout.profile(org), configgen.connection_profile(self.topology, org, self.layout)
            )
            for o in org.orderers:
                home = self.layout.node_home(o.name)
                home.mkdir(parents=True, exist_ok=True)
                shutil.copy(self.binaries.sampleconfig / "orderer.yaml", home / "orderer.yaml")

    def _genesis_block(self) -> None:
        argv = [
            str(self.binaries.path("configtxgen")),
            "-profile",
            configgen.PROFILE,
            "-channelID",
            self.topology.channel,
            "-outputBlock",
            str(self.layout.genesis_block(self.topology.channel)),
        ]
        env = {"PATH": os.environ.get("PATH", ""), "FABRIC_CFG_PATH": str(self.layout.config)}
        result = subprocess.run(argv, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise NetworkError(f"configtxgen failed:\n{result.stderr.strip()[-2000:]}")

    def _start_kind(self, kind: str) -> None:
        nodes = [n for n in self.nodes() if n.kind == kind]
        for n in nodes:
            self.start_node(n.name, wait=False)
        for n in nodes:
            self._wait_healthy(n)

    def start_node(self, name: str, wait: bool = True) -> None:
        n = self.node(name)
        if self.processes.alive(name):
            return
        self.processes.start(name, n.argv, n.env, self.layout.log(name), cwd=n.cwd)
        if wait:
            self._wait_healthy(n)

    def stop_node(self, name: str) -> bool:
        self.node(name)  # validates the name
        return self.processes.stop(name)

    def _wait_healthy(self, n: Node) -> None:
        def ready() -> bool:
            if not self.processes.alive(n.name):
                raise NetworkError(f"{n.name} exited during start-up; see its log: {self.layout.log(n.name)}")
            return n.healthy()

        if not wait_until(ready, HEALTH_TIMEOUT):
            log = self.layout.log(n.name)
            raise NetworkError(f"{n.name} was not healthy after {HEALTH_TIMEOUT:.0f}s; see its log: {log}")

    def down(self) -> list[str]:
        """Stop every recorded process, clients of a node before the node; ledgers stay."""
        stopped = [n.name for n in reversed(self.nodes()) if self.processes.stop(n.name)]
        return stopped + self.processes.stop_all()

    def clean(self) -> None:
        self.down()
        if self.layout.root.exists():
            shutil.rmtree(self.layout.root)

    # ---- chaincode -----------------------------------------------------------------

    def deploy(self, version: str) -> Deployment:
        """Run the chaincode lifecycle for `version` with the next sequence; state is kept."""
        if not re.fullmatch(r"[0-9A-Za-z][0-9A-Za-z.+_-]{0,31}", version):
            raise NetworkError(f"chaincode version {version!r}: use letters, digits, '.', '+', '_', '-'")
        orgs = self.topology.organizations
        current = self.lifecycle.committed(orgs[0])
        if current is not None and current.get("version") == version:
            raise NetworkError(f"chaincode version {version} is already committed; pick a new version")
        sequence = 1 if current is None else int(str(current["sequence"])) + 1
        out = self.layout.chaincode / version
        with self._step(f"build chaincode {self.topology.chaincode_name} {version} (go build)"):
            binary = build_server(version, out)
            pkg = out / f"{self.topology.chaincode_name}-{version}.tar.gz"
            package_id = package(f"{self.topology.chaincode_name}_{version}", pkg)
        with self._step(f"install package {package_id[:40]}… on {len(orgs)} peers"):
            for org in orgs:
                self.lifecycle.install(org, pkg)
        deployment = Deployment(version, sequence, package_id, str(binary))
        previous = self.deployment
        self.deployment_file.write_text(deployment.to_json())
        try:
            with self._step("start one chaincode server per organization (chaincode as a service)"):
                for org in orgs:
                    self.processes.stop(org.chaincode_name)
                self._start_kind("chaincode")
            with self._step(f"approve sequence {sequence} for every organization"):
                for org in orgs:
                    self.lifecycle.approve(org, version, package_id, sequence)
            with self._step(f"commit {self.topology.chaincode_name} {version} (sequence {sequence})"):
                self.lifecycle.commit(version, sequence)
        except Exception:
            if previous is not None:
                self.deployment_file.write_text(previous.to_json())
            raise
        if previous is not None:
            self._heartbeats()  # an upgrade is done when every org's Gateway can use it
        return deployment

    def invoke(self, org: Organization, function: str, *args: str, identity: str = "admin") -> str:
        """Submit a transaction with the official peer CLI and wait for it to commit.

        Retries while ordering is unavailable (a Raft or BFT leader being elected)."""
        endorsers = self._endorsers(org)
        call = json.dumps({"Args": [function, *args]})
        return retry_transient(
            lambda: self.tools.peer(
                org,
                "chaincode",
                "invoke",
                *self.tools.orderer_args(org),
                "-C",
                self.topology.channel,
                "-n",
                self.topology.chaincode_name,
                *self.tools.peer_target_args(endorsers),
                "-c",
                call,
                "--waitForEvent",
                identity=identity,
            )
        )

    def query(self, org: Organization, function: str, *args: str, identity: str = "admin") -> str:
        call = json.dumps({"Args": [function, *args]})
        return self.tools.peer(
            org,
            "chaincode",
            "query",
            "-C",
            self.topology.channel,
            "-n",
            self.topology.chaincode_name,
            "-c",
            call,
            identity=identity,
        ).strip()

    def _endorsers(self, org: Organization) -> list[Organization]:
        """The calling org's peer first, then enough others to satisfy the endorsement rule."""
        others = [o for o in self.topology.organizations if o.name != org.name]
        n = len(self.topology.organizations)
        need = {"ANY": 1, "ALL": n, "MAJORITY": n // 2 + 1}[self.topology.endorsement]
        return [org, *others][:need]

    # ---- status --------------------------------------------------------------------

    def status(self) -> list[NodeStatus]:
        result = []
        for n in self.nodes():
            running = self.processes.alive(n.name)
            healthy = running and (n.healthy())
            st = NodeStatus(n.name, n.kind, n.org.name, running, healthy)
            if healthy and n.kind == "peer":
                st.height = self.peer_height(n.org)
                committed = self._committed_quietly(n.org)
                if committed:
                    st.extra["chaincode"] = (
                        f"{committed.get('version')} (sequence {committed.get('sequence')})"
                    )
            if healthy and n.kind == "orderer":
                st.height = self.orderer_height(n.name)
            result.append(st)
        return result

    def _committed_quietly(self, org: Organization) -> dict[str, object] | None:
        try:
            return self.lifecycle.committed(org)
        except FabricCommandError:
            return None

    def peer_height(self, org: Organization) -> int | None:
        try:
            out = self.tools.peer(org, "channel", "getinfo", "-c", self.topology.channel, timeout=20)
        except FabricCommandError:
            return None
        m = re.search(r'"height":(\d+)', out)
        return int(m.group(1)) if m else None

    def orderer_height(self, name: str) -> int | None:
        orderer = next(o for o in self.topology.orderers if o.name == name)
        try:
            out = self.tools.osnadmin(
                orderer, "channel", "list", "--channelID", self.topology.channel, timeout=20
            )
        except FabricCommandError:
            return None
        m = re.search(r'"height":\s*(\d+)', out)
        return int(m.group(1)) if m else None


class _Step:
    """Prints a spinner while a bring-up step runs and a check mark when it is done."""

    def __init__(self, console: Console, title: str) -> None:
        self.console = console
        self.title = title
        self.status = console.status(title + " …")

    def __enter__(self) -> _Step:
        self.status.__enter__()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.status.__exit__(None, None, None)
        mark = "[green]✓[/]" if exc_type is None else "[red]✗[/]"
        self.console.print(f"{mark} {self.title}")


def json_status(statuses: list[NodeStatus]) -> str:
    return json.dumps([s.__dict__ for s in statuses], indent=2)
