"""A newcomer organization's own site, built with the network tooling in a scratch directory.

Only public material crosses over from the running consortium: the members' CA
certificates (to trust their TLS) and, through the channel, the config blocks."""

from __future__ import annotations

import shutil
from pathlib import Path

from fabric_protos.common import common_pb2

from fabricml.gateway.profile import ConnectionProfile
from fabricml.network import configgen
from fabricml.network.governance.site import Site
from fabricml.network.identities import CA_ADMIN, CertificateAuthority
from fabricml.network.network import Network
from fabricml.network.peercli import retry_transient
from fabricml.network.topology import Organization, parse


class Newcomer:
    """Org `name` appended to the consortium's topology, with its state in `scratch`."""

    def __init__(self, consortium: Network, scratch: Path, name: str = "org4") -> None:
        topo = consortium.topology
        raw = {
            "name": topo.name, "channel": topo.channel, "consensus": topo.consensus,
            "endorsement": topo.endorsement, "ports": {"base": topo.base_port},
            "chaincode": {"name": topo.chaincode_name, "version": topo.chaincode_version},
            "organizations": [{"name": o.name} for o in topo.organizations] + [{"name": name}],
        }  # fmt: skip
        self.consortium = consortium
        self.net = Network(parse(raw), scratch, binaries=consortium.binaries)
        self.org: Organization = self.net.topology.org(name)

    @property
    def msp_dir(self) -> Path:
        return self.net.layout.org_msp(self.org)

    @property
    def orderer(self) -> str:
        return self.org.orderers[0].address

    @property
    def orderer_tls_cert(self) -> Path:
        return self.net.layout.tls(self.org, "orderer0") / "server.crt"

    def start_ca_and_issue_identities(self) -> None:
        self.net.layout.root.mkdir(parents=True, exist_ok=True)
        ca = CertificateAuthority(self.net.binaries, self.net.layout, self.org)
        ca.secret(CA_ADMIN)
        self.net.start_node(self.org.ca_name)
        ca.issue_all()
        self._write_configs()

    def _write_configs(self) -> None:
        layout, org = self.net.layout, self.org
        configgen.write_yaml(
            layout.node_home(org.peer_name) / "core.yaml", configgen.core_yaml(self.net.binaries)
        )
        configgen.write_json(
            configgen.builder_config_file(org, layout),
            configgen.chaincode_connection(org, layout),
            mode=0o600,
        )
        profile = configgen.connection_profile(self.net.topology, org, layout)
        members = {o.name: o for o in self.consortium.topology.organizations}
        for name, peer in profile["peers"].items():  # other orgs' TLS roots: their public CA certs
            owner = name.split(".", 1)[1]
            if owner in members:
                peer["tlsCACerts"]["path"] = str(self.consortium.layout.ca_cert(members[owner]))
        for name, orderer in profile["orderers"].items():
            owner = name.split(".", 1)[1]
            if owner in members:
                orderer["tlsCACerts"]["path"] = str(self.consortium.layout.ca_cert(members[owner]))
        configgen.write_json(layout.profile(org), profile)
        home = layout.node_home(self.org.orderers[0].name)
        home.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.net.binaries.sampleconfig / "orderer.yaml", home / "orderer.yaml")

    def site(self) -> Site:
        return Site(ConnectionProfile.load(self.net.layout.profile(self.org)))

    def _write_block(self, block: common_pb2.Block, name: str) -> Path:
        path = self.net.layout.config / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(block.SerializeToString())
        return path

    def join_orderer(self, config_block: common_pb2.Block) -> None:
        """Start the org's orderer and join it with the latest config block (it replicates the rest)."""
        orderer = self.org.orderers[0]
        self.net.start_node(orderer.name)
        block = self._write_block(config_block, "join-orderer.block")
        self.net.tools.osnadmin(
            orderer, "channel", "join", "--channelID", self.net.topology.channel, "--config-block", str(block)
        )

    def join_peer(self, genesis: common_pb2.Block) -> None:
        self.net.start_node(self.org.peer_name)
        block = self._write_block(genesis, "genesis.block")
        retry_transient(lambda: self.net.tools.peer(self.org, "channel", "join", "-b", str(block)))

    def run_chaincode(self) -> None:
        """Install the consortium's chaincode package, start this org's server, approve the
        committed definition (same version and sequence) with this org's admin."""
        deployment = self.consortium.deployment
        assert deployment is not None
        self.net.deployment_file.write_text(deployment.to_json())
        pkg = next((self.consortium.layout.chaincode / deployment.version).glob("*.tar.gz"))
        self.net.lifecycle.install(self.org, pkg)
        self.net.start_node(self.org.chaincode_name)
        self.net.lifecycle.approve(self.org, deployment.version, deployment.package_id, deployment.sequence)

    def stop(self) -> None:
        self.net.processes.stop_all()
