"""What one site runs when deployed, independent of compose or Kubernetes: each component's
image, command, environment, ports and the site files it needs (keys, public files, data).

Containers see the site at the same absolute path as the host that ran `site init`, so every
path the site wrote (connection profiles, node environments) stays true inside them."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from .. import nodeconfig, sitenodes
from ..binaries import FABRIC_CA_VERSION, FABRIC_VERSION, Binaries
from ..identities import CertificateAuthority
from ..layout import SiteLayout
from ..topology import Organization
from .images import fabricml_image

CONFIG_ROOT = Path("/etc/fabricml")  # generated, non-secret node configuration (core.yaml, orderer.yaml)
IMAGE_BUILDER = "/opt/hyperledger/ccaas_builder"  # Fabric's CCaaS builder inside the official peer image
SERVICE_IDENTITIES = ("admin", "auditor", "trainer", "user1", "api")  # what the admin API signs with


@dataclass(frozen=True)
class Files:
    """Site files a component needs, as paths relative to the site root."""

    secret: tuple[str, ...] = ()  # private keys and secrets: read-only, Kubernetes Secrets
    public: tuple[str, ...] = ()  # certificates, the site's view of the consortium: read-only
    data: tuple[str, ...] = ()  # what the component writes: ledgers, CA database, artifacts


@dataclass(frozen=True)
class Component:
    """One long-lived container of the site."""

    name: str  # the node's name, e.g. peer0.city-hospital
    kind: str  # ca, orderer, peer, chaincode, artifacts, api, agent, inference
    image: str
    command: list[str]
    env: dict[str, str]
    ports: dict[str, int]  # what listens, by name (offsets of docs/network.md)
    files: Files
    config: dict[str, str] = field(default_factory=dict)  # file name -> text, under config_dir
    optional: bool = False  # started on demand (compose profiles), not with the site

    @property
    def config_dir(self) -> Path:
        return CONFIG_ROOT / self.name


@dataclass(frozen=True)
class SitePlan:
    org: Organization
    root: Path  # the site directory, the same path inside every container
    listen: str  # what servers bind: the site's host (compose, host network) or 0.0.0.0 (Kubernetes)
    package_id: str  # the chaincode package the site's peer runs
    chaincode_version: str
    node_config: dict[str, str]  # node name -> its core.yaml or orderer.yaml text

    @property
    def site(self) -> SiteLayout:
        return SiteLayout(self.root)

    def components(self) -> list[Component]:
        return [
            self.ca(),
            *(self.orderer(k) for k in range(self.org.orderer_count)),
            self.peer(),
            self.chaincode(),
            self.revocations(),
            self.artifacts(),
            self.api(),
            self.agent(),
            self.inference(),
        ]

    def at(self, port: int) -> str:
        return f"{self.listen}:{port}"

    def rel(self, path: Path) -> str:
        return str(path.relative_to(self.root))

    def ca(self) -> Component:
        org = self.org
        authority = CertificateAuthority(Binaries(Path("/unused")), self.site, org)  # argv and paths only
        argv = authority.server_argv("fabric-ca-server")
        argv[argv.index("--address") + 1] = self.listen
        env = {
            "FABRIC_CA_SERVER_OPERATIONS_LISTENADDRESS": self.at(org.port(1)),
            "FABRIC_CA_SERVER_METRICS_PROVIDER": "prometheus",
        }  # its bootstrap admin and password are in the CA home's config since `site init`
        ports = {"ca": org.ca_port, "ca-ops": org.port(1)}
        return Component(
            org.ca_name, "ca", f"hyperledger/fabric-ca:{FABRIC_CA_VERSION}", argv, env, ports,
            Files(data=(self.rel(self.site.ca_home),)),
        )  # fmt: skip

    def orderer(self, k: int) -> Component:
        org, o = self.org, self.org.orderers[k]
        env = nodeconfig.orderer_env(org, o, self.site)
        env.update(
            FABRIC_CFG_PATH=str(CONFIG_ROOT / o.name),
            ORDERER_GENERAL_LISTENADDRESS=self.listen,
            ORDERER_ADMIN_LISTENADDRESS=self.at(o.admin_port),
            ORDERER_OPERATIONS_LISTENADDRESS=self.at(o.operations_port),
        )
        ports = {"orderer": o.port, "admin": o.admin_port, "ops": o.operations_port}
        files = Files(
            secret=(self.rel(self.site.identity(f"orderer{k}")),),
            data=(self.rel(self.site.node_home(o.name)),),
        )
        config = {"orderer.yaml": self.node_config[o.name]}
        return Component(
            o.name, "orderer", f"hyperledger/fabric-orderer:{FABRIC_VERSION}", ["orderer"], env, ports,
            files, config,
        )  # fmt: skip

    def peer(self) -> Component:
        org = self.org
        env = nodeconfig.peer_env(org, self.site)
        env.update(
            FABRIC_CFG_PATH=str(CONFIG_ROOT / org.peer_name),
            CORE_PEER_LISTENADDRESS=self.at(org.peer_port),
            CORE_PEER_CHAINCODELISTENADDRESS=self.at(org.port(11)),
            CORE_OPERATIONS_LISTENADDRESS=self.at(org.peer_operations_port),
        )
        builder = nodeconfig.builder_config_file(org, self.site)
        # The builder's per-peer values (the peer's TLS key among them) go in its environment.
        script = f'export {nodeconfig.BUILDER_CONFIG_ENV}="$(cat {builder})"; exec peer node start'
        ports = {"peer": org.peer_port, "chaincode": org.port(11), "ops": org.peer_operations_port}
        files = Files(
            secret=(self.rel(self.site.identity("peer0")), self.rel(builder)),
            data=(self.rel(self.site.node_home(org.peer_name)),),
        )
        config = {"core.yaml": self.node_config[org.peer_name]}
        image = f"hyperledger/fabric-peer:{FABRIC_VERSION}"
        return Component(org.peer_name, "peer", image, ["sh", "-c", script], env, ports, files, config)

    def chaincode(self) -> Component:
        org = self.org
        env = nodeconfig.chaincode_env(org, self.site, self.package_id)
        env["CHAINCODE_SERVER_ADDRESS"] = self.at(org.chaincode_port)
        files = Files(secret=(self.rel(self.site.identity_tls("chaincode")),))
        return Component(
            org.chaincode_name, "chaincode", self.image, ["fabricml-chaincode"], env,
            {"chaincode": org.chaincode_port}, files,
        )  # fmt: skip

    @property
    def image(self) -> str:
        return fabricml_image(self.chaincode_version)

    def view(self) -> tuple[str, ...]:
        """The joined site read as a one-org consortium (siteview) and the members' certificates."""
        return ("site.yaml", "topology.yaml", "profiles", "sites", "members", "ca.pem", "msp", "channel")

    def revocations(self) -> Component:
        """Members' revocation lists from the channel, for the artifact store (revocations.py)."""
        org = self.org
        argv = ["python", *sitenodes.revocations_node(org, self.site).argv[1:]]
        files = Files(
            secret=(self.rel(self.site.identity("auditor")),),
            public=("site.yaml", "profiles", "members", "ca.pem", "channel"),
            data=(self.rel(self.site.revocations),),
        )
        return Component(org.revocations_name, "revocations", self.image, argv, {}, {}, files)

    def artifacts(self) -> Component:
        org = self.org
        argv = ["python", *sitenodes.artifacts_node(org, self.site).argv[1:]]
        argv[argv.index("--host") + 1] = self.listen
        files = Files(  # the revocation lists are the follower's data, shared in the pod
            secret=(self.rel(self.site.identity_tls("artifacts")),),
            public=("ca.pem", "members"),
            data=(self.rel(self.site.artifact_store), self.rel(self.site.revocations)),
        )
        return Component(
            org.artifacts_name, "artifacts", self.image, argv, {}, {"artifacts": org.artifacts_port}, files
        )

    def api(self) -> Component:
        org = self.org
        argv = ["python", "-m", "fabricml.api", "--org", org.name, "--state-dir", str(self.root)]
        identities = tuple(self.rel(self.site.identity(name)) for name in SERVICE_IDENTITIES)
        registrar = self.rel(self.site.ca_home / "registrar")  # identity management through the API
        files = Files(
            secret=(*identities, registrar), public=self.view(), data=(self.rel(self.site.artifact_store),)
        )
        env = {"FABRICML_API_HOST": self.listen}
        return Component(org.api_name, "api", self.image, argv, env, {"api": org.api_port}, files)

    def _client(self, identity: str, *args: str) -> list[str]:
        topology = str(self.site.topology_view)
        return ["fabricml", *args, "--topology", topology, "--state-dir", str(self.root), "--org",
                self.org.name, "--identity", identity]  # fmt: skip

    def agent(self) -> Component:
        """The org's training agent; its private data sits in the site's data/ folder."""
        data = self.root / "data"
        argv = [*self._client("trainer", "agent", "run"), "--task", '"${TASK_ID:?set FABRICML_TASK}"',
                "--data", shlex.quote(str(data)) + '/"${DATA_FILE:?set FABRICML_TRAINING_DATA}"']  # fmt: skip
        env = {"TASK_ID": "${FABRICML_TASK:-}", "DATA_FILE": "${FABRICML_TRAINING_DATA:-}"}
        files = Files(
            secret=(self.rel(self.site.identity("trainer")),),
            public=(*self.view(), "data"),
            data=("federated", self.rel(self.site.artifact_store)),
        )
        return Component(
            f"agent.{self.org.name}", "agent", self.image, _shell(argv), env, {}, files, optional=True
        )

    def inference(self) -> Component:
        """`fabricml serve`: an approved model, a signed receipt per answer (binds 127.0.0.1)."""
        org = self.org
        argv = [
            *self._client("inference", "serve"),
            "--model",
            '"${MODEL:?set FABRICML_MODEL to name@version}"',
        ]
        files = Files(
            secret=(self.rel(self.site.identity("inference")),),
            public=(*self.view(), self.rel(self.site.artifact_store)),
            data=("inference",),
        )
        ports, env = {"inference": org.port(41)}, {"MODEL": "${FABRICML_MODEL:-}"}
        return Component(
            f"inference.{org.name}", "inference", self.image, _shell(argv), env, ports, files, optional=True
        )


def _shell(argv: list[str]) -> list[str]:
    """Run argv (whose quoted parts name variables) through sh, which refuses unset ones by name."""
    return ["sh", "-c", "exec " + " ".join(a if '"$' in a else shlex.quote(a) for a in argv)]
