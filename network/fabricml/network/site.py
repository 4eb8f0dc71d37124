"""One organization's site: its own directory (0700), CA, keys, nodes and public bundle.

A site reads only its own directory and the public files it was handed (members'
bundles, the genesis block); `founding`, `joining` and `upgrade` hold the steps that
involve the channel."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rich.console import Console

from . import binaries as binaries_mod
from . import nodeconfig, sitefile, sitenodes
from .binaries import Binaries
from .bundle import FORMAT, SignedBundle, sign
from .bundle import read as read_bundle
from .chaincode import Deployment
from .identities import CA_ADMIN, NODE_OU_CONFIG, CertificateAuthority
from .layout import SiteLayout
from .lifecycle import Lifecycle
from .members import Members
from .peercli import AdminTools
from .processes import ProcessTable, port_in_use
from .steps import Step
from .supervisor import NetworkError, Node, Supervisor
from .topology import Organization


class SiteError(NetworkError):
    """A site command cannot run; the message says why and what to do."""


class PortBusyError(SiteError):
    """A port of the site is taken by another program."""


def private_dir(path: Path) -> None:
    """Create `path` with mode 0700 (and make sure of it if it exists)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)


class Site:
    """One organization's site in `state_dir`, described by its site file."""

    def __init__(
        self,
        org: Organization,
        state_dir: Path,
        binaries: Binaries | None = None,
        console: Console | None = None,
    ) -> None:
        self.org = org
        self.layout = SiteLayout(state_dir.absolute())
        self.binaries = binaries or binaries_mod.default_binaries()
        self.console = console or Console(stderr=True)
        self.supervisor = Supervisor(ProcessTable(self.layout.processes), self.layout.log)

    @classmethod
    def open(cls, state_dir: Path, binaries: Binaries | None = None, console: Console | None = None) -> Site:
        """The site initialized in state_dir."""
        layout = SiteLayout(state_dir)
        if not layout.site_file.exists():
            raise SiteError(
                f"no site in {state_dir}; run `fabricml site init --site-file FILE --state-dir DIR`"
            )
        return cls(sitefile.load(layout.site_file), state_dir, binaries, console)

    def step(self, title: str) -> Step:
        return Step(self.console, f"\\[{self.org.name}] {title}")

    # ---- facts ----------------------------------------------------------------------

    @property
    def joined(self) -> dict[str, Any] | None:
        """The channel this site joined and the chaincode definition it follows."""
        path = self.layout.channel_file
        return dict(json.loads(path.read_text())) if path.exists() else None

    def save_joined(self, joined: dict[str, Any]) -> None:
        self.layout.channel.mkdir(parents=True, exist_ok=True)
        self.layout.channel_file.write_text(json.dumps(joined, indent=2, sort_keys=True) + "\n")

    @property
    def channel(self) -> str:
        return str((self.joined or {}).get("channel", ""))

    @property
    def tools(self) -> AdminTools:
        return AdminTools(self.org, self.layout, self.binaries, self.channel)

    @property
    def lifecycle(self) -> Lifecycle:
        return Lifecycle(self.tools, str((self.joined or {}).get("chaincode", "fabricml")))

    @property
    def members(self) -> Members:
        return Members(self.layout)

    @property
    def ca(self) -> CertificateAuthority:
        return CertificateAuthority(self.binaries, self.layout, self.org)

    @property
    def deployment(self) -> Deployment | None:
        return Deployment.load(self.layout.deployment)

    @property
    def initialized(self) -> bool:
        return self.layout.bundle.exists()

    def nodes(self) -> list[Node]:
        return sitenodes.nodes(self.org, self.layout, self.binaries, self.deployment)

    def node(self, name: str) -> Node:
        for n in self.nodes():
            if n.name == name:
                return n
        raise SiteError(
            f"no node named {name!r} at {self.org.name}; nodes: {', '.join(n.name for n in self.nodes())}"
        )

    def is_up(self) -> bool:
        return all(self.supervisor.alive(n.name) for n in self.nodes())

    # ---- init and bundles ---------------------------------------------------------------

    def check_ports(self) -> None:
        busy = [
            (name, port) for name, port in self.org.named_ports().items() if port_in_use(port, self.org.host)
        ]
        if busy:
            listing = ", ".join(f"{name} needs {self.org.address(port)}" for name, port in busy)
            raise PortBusyError(f"ports already in use, nothing was started: {listing}")

    def init(self) -> bool:
        """Create the site: directory, CA (and TLS CA), identities, node config, bundle.
        False when the site was initialized before (nothing is changed then)."""
        root = self.layout.root
        if self.initialized:
            return False
        if root.exists() and any(root.iterdir()) and not self.layout.site_file.exists():
            raise SiteError(f"{root} is not empty and holds no site; choose an empty or new directory")
        if not self.supervisor.alive(self.org.ca_name):
            self.check_ports()
        binaries_mod.ensure(self.console, self.binaries)
        private_dir(root)
        self.layout.site_file.write_text(sitefile.render(self.org))
        with self.step(f"start {self.org.ca_name} (enrollment, TLS and operator CA) on {self.org.host}"):
            self.ca.secret(CA_ADMIN)
            self.ca.write_tls_ca_config()
            self.supervisor.start([sitenodes.ca_node(self.org, self.layout, self.binaries)])
        with self.step("issue identities (admin, peer, orderers, trainer, inference, auditor, user1, TLS)"):
            self.ca.issue_all()
        with self.step("write the nodes' configuration"):
            self._write_node_config()
        self.export()
        return True

    def _write_node_config(self) -> None:
        nodeconfig.place_trust_files(self.org, self.layout)
        home = self.layout.node_home(self.org.peer_name)
        nodeconfig.write_yaml(home / "core.yaml", nodeconfig.core_yaml(self.binaries))
        builder = nodeconfig.builder_config_file(self.org, self.layout)
        nodeconfig.write_json(builder, nodeconfig.chaincode_connection(self.org, self.layout), mode=0o600)
        for o in self.org.orderers:
            self.layout.node_home(o.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(
                self.binaries.sampleconfig / "orderer.yaml", self.layout.node_home(o.name) / "orderer.yaml"
            )

    def bundle_body(self) -> dict[str, Any]:
        s, org = self.layout, self.org
        orderers = [
            {
                "name": o.name,
                "address": o.address,
                "tlsCert": (s.identity_tls(f"orderer{o.index}") / "server.crt").read_text(),
                "identityCert": (s.identity_msp(f"orderer{o.index}") / "signcerts" / "cert.pem").read_text(),
            }
            for o in org.orderers
        ]
        return {
            "format": FORMAT, "name": org.name, "mspId": org.msp_id,
            "caCert": s.identity_ca_cert.read_text(), "tlsCaCert": s.tls_ca_cert.read_text(),
            "nodeOUs": NODE_OU_CONFIG,
            "peer": {"name": org.peer_name, "address": org.peer_address},
            "orderers": orderers,
            "ca": f"https://{org.address(org.ca_port)}",
            "artifactStore": org.artifacts_url,
            "adminApi": f"https://{org.address(org.api_port)}",
        }  # fmt: skip

    def export(self, out: Path | None = None) -> SignedBundle:
        """Write the signed public bundle (to the outbox, and `out` if given)."""
        msp = self.layout.identity_msp("admin")
        keys = sorted((msp / "keystore").iterdir())
        signed = sign(self.bundle_body(), (msp / "signcerts" / "cert.pem").read_text(), keys[0])
        self.layout.outbox.mkdir(parents=True, exist_ok=True)
        self.layout.bundle.write_text(signed.to_json())
        if out is not None:
            out.write_text(signed.to_json())
        self.members.add(signed, replace=True)
        return signed

    def import_bundle(
        self, path: Path, fingerprint: str | None = None, replace: bool = False
    ) -> SignedBundle:
        """Check a member's bundle (signature, contents, and the fingerprint if given) and keep it."""
        signed = read_bundle(path)
        b = signed.bundle
        if fingerprint is not None and fingerprint.strip().upper() != b.fingerprint:
            raise SiteError(f"{path} has fingerprint {b.fingerprint}, not {fingerprint}: do not import it")
        if b.name == self.org.name or b.msp_id == self.org.msp_id:
            raise SiteError(f"{path} claims this site's own name or MSP ID ({b.name}, {b.msp_id}); refused")
        self.members.add(signed, replace=replace)
        return signed

    # ---- processes --------------------------------------------------------------------

    def start(self, kinds: tuple[str, ...] | None = None) -> list[str]:
        nodes = [n for n in self.nodes() if kinds is None or n.kind in kinds]
        return self.supervisor.start(nodes)

    def down(self) -> list[str]:
        return self.supervisor.stop_all(self.nodes())

    def clean(self) -> None:
        self.down()
        if self.layout.root.exists():
            shutil.rmtree(self.layout.root)


def on_each(sites: list[Site], action: Callable[[Site], object]) -> None:
    """Run an action on every site in parallel threads (sites share nothing); re-raise the first error."""
    with ThreadPoolExecutor(max_workers=max(1, len(sites))) as pool:
        for future in [pool.submit(action, s) for s in sites]:
            future.result()
