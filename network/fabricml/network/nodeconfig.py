"""Each node's configuration from its site: environments, core.yaml, the CCaaS connection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from .binaries import Binaries
from .layout import SiteLayout
from .topology import Orderer, Organization

BUILDER_CONFIG_ENV = "CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG"
# Copied beside a node's TLS key at `site init`, so a deployment mounts nothing more.
OPERATOR_CA_FILE = "operator-ca.crt"  # the operator CA: the one client root of osnadmin and /logspec
PEER_CERT_FILE = "peer.crt"  # the chaincode server's one client: its peer's TLS certificate (pinned)
CONNECTION_TEMPLATE = {
    "address": "{{.address}}",
    "dial_timeout": "10s",
    "tls_required": True,
    "client_auth_required": True,
    "root_cert": "{{.root_cert}}",
    "client_cert": "{{.client_cert}}",
    "client_key": "{{.client_key}}",
}


def core_yaml(binaries: Binaries) -> dict[str, Any]:
    """Fabric's sample core.yaml without Docker and with our chaincode-as-a-service builder."""
    core: dict[str, Any] = yaml.safe_load((binaries.sampleconfig / "core.yaml").read_text())
    core["vm"]["endpoint"] = ""
    core["chaincode"]["externalBuilders"] = [
        {
            "name": "fabricml-ccaas",
            "path": str(binaries.builder),
            "propagateEnvironment": [BUILDER_CONFIG_ENV],
        }
    ]
    return core


def peer_env(org: Organization, site: SiteLayout) -> dict[str, str]:
    home = site.node_home(org.peer_name)
    tls = site.identity_tls("peer0")
    return {
        "FABRIC_CFG_PATH": str(home),
        "CORE_PEER_ID": org.peer_name,
        "CORE_PEER_ADDRESS": org.peer_address,
        "CORE_PEER_LISTENADDRESS": org.peer_address,
        "CORE_PEER_CHAINCODEADDRESS": org.address(org.port(11)),
        "CORE_PEER_CHAINCODELISTENADDRESS": org.address(org.port(11)),
        "CORE_PEER_GOSSIP_EXTERNALENDPOINT": org.peer_address,
        "CORE_PEER_GOSSIP_BOOTSTRAP": org.peer_address,
        "CORE_PEER_LOCALMSPID": org.msp_id,
        "CORE_PEER_MSPCONFIGPATH": str(site.identity_msp("peer0")),
        "CORE_PEER_TLS_ENABLED": "true",
        "CORE_PEER_TLS_CERT_FILE": str(tls / "server.crt"),
        "CORE_PEER_TLS_KEY_FILE": str(tls / "server.key"),
        "CORE_PEER_TLS_ROOTCERT_FILE": str(tls / "ca.crt"),
        "CORE_PEER_FILESYSTEMPATH": str(home / "data"),
        "CORE_LEDGER_SNAPSHOTS_ROOTDIR": str(home / "snapshots"),
        "CORE_OPERATIONS_LISTENADDRESS": org.address(org.peer_operations_port),
        # TLS; /logspec and /metrics take the operator CA's certificate only (/healthz needs none).
        "CORE_OPERATIONS_TLS_ENABLED": "true",
        "CORE_OPERATIONS_TLS_CERT_FILE": str(tls / "server.crt"),
        "CORE_OPERATIONS_TLS_KEY_FILE": str(tls / "server.key"),
        "CORE_OPERATIONS_TLS_CLIENTAUTHREQUIRED": "false",
        "CORE_OPERATIONS_TLS_CLIENTROOTCAS_FILES": str(tls / OPERATOR_CA_FILE),
        "CORE_METRICS_PROVIDER": "prometheus",
    }


def builder_config_file(org: Organization, site: SiteLayout) -> Path:
    """Per-peer values for connection.json; the peer gets them in BUILDER_CONFIG_ENV."""
    return site.node_home(org.peer_name) / "ccaas-builder.json"


def chaincode_connection(org: Organization, site: SiteLayout) -> dict[str, str]:
    """This org's chaincode server, reached over mutual TLS with the peer's TLS identity."""
    tls = site.identity_tls("peer0")
    return {
        "address": org.address(org.chaincode_port),
        "root_cert": (tls / "ca.crt").read_text(),
        "client_cert": (tls / "server.crt").read_text(),
        "client_key": (tls / "server.key").read_text(),
    }


def chaincode_env(org: Organization, site: SiteLayout, package_id: str) -> dict[str, str]:
    tls = site.identity_tls("chaincode")
    return {
        "CHAINCODE_ID": package_id,
        "CHAINCODE_SERVER_ADDRESS": org.address(org.chaincode_port),
        "CHAINCODE_LOCAL_MSPID": org.msp_id,
        "CHAINCODE_TLS_CERT_FILE": str(tls / "server.crt"),
        "CHAINCODE_TLS_KEY_FILE": str(tls / "server.key"),
        "CHAINCODE_TLS_CLIENT_CA_FILE": str(tls / "ca.crt"),  # so the peer's client sends its certificate
        "CHAINCODE_TLS_PEER_CERT_FILE": str(tls / PEER_CERT_FILE),  # the one client certificate served
    }


def orderer_env(org: Organization, orderer: Orderer, site: SiteLayout) -> dict[str, str]:
    home = site.node_home(orderer.name)
    tls = site.identity_tls(f"orderer{orderer.index}")
    cert, key, ca = str(tls / "server.crt"), str(tls / "server.key"), str(tls / "ca.crt")
    operator_ca = str(tls / OPERATOR_CA_FILE)
    return {
        "FABRIC_CFG_PATH": str(home),
        "ORDERER_GENERAL_LISTENADDRESS": orderer.host,
        "ORDERER_GENERAL_LISTENPORT": str(orderer.port),
        "ORDERER_GENERAL_LOCALMSPID": org.msp_id,
        "ORDERER_GENERAL_LOCALMSPDIR": str(site.identity_msp(f"orderer{orderer.index}")),
        "ORDERER_GENERAL_TLS_ENABLED": "true",
        "ORDERER_GENERAL_TLS_PRIVATEKEY": key,
        "ORDERER_GENERAL_TLS_CERTIFICATE": cert,
        "ORDERER_GENERAL_TLS_ROOTCAS": f"[{ca}]",
        "ORDERER_GENERAL_CLUSTER_CLIENTCERTIFICATE": cert,
        "ORDERER_GENERAL_CLUSTER_CLIENTPRIVATEKEY": key,
        "ORDERER_GENERAL_CLUSTER_ROOTCAS": f"[{ca}]",
        "ORDERER_GENERAL_BOOTSTRAPMETHOD": "none",
        "ORDERER_CHANNELPARTICIPATION_ENABLED": "true",
        "ORDERER_ADMIN_LISTENADDRESS": orderer.host + f":{orderer.admin_port}",
        "ORDERER_ADMIN_TLS_ENABLED": "true",
        "ORDERER_ADMIN_TLS_CERTIFICATE": cert,
        "ORDERER_ADMIN_TLS_PRIVATEKEY": key,
        "ORDERER_ADMIN_TLS_ROOTCAS": f"[{ca}]",
        # Only the operator CA may sign in to the admin endpoint: the admin's operator certificate.
        "ORDERER_ADMIN_TLS_CLIENTAUTHREQUIRED": "true",
        "ORDERER_ADMIN_TLS_CLIENTROOTCAS": f"[{operator_ca}]",
        "ORDERER_OPERATIONS_LISTENADDRESS": orderer.host + f":{orderer.operations_port}",
        "ORDERER_OPERATIONS_TLS_ENABLED": "true",
        "ORDERER_OPERATIONS_TLS_CERTIFICATE": cert,
        "ORDERER_OPERATIONS_TLS_PRIVATEKEY": key,
        "ORDERER_OPERATIONS_TLS_CLIENTAUTHREQUIRED": "false",
        "ORDERER_OPERATIONS_TLS_CLIENTROOTCAS": f"[{operator_ca}]",
        "ORDERER_METRICS_PROVIDER": "prometheus",
        "ORDERER_FILELEDGER_LOCATION": str(home / "ledger"),
        "ORDERER_CONSENSUS_WALDIR": str(home / "etcdraft" / "wal"),
        "ORDERER_CONSENSUS_SNAPDIR": str(home / "etcdraft" / "snapshot"),
    }


def place_trust_files(org: Organization, site: SiteLayout) -> None:
    """Beside each node's TLS key: the operator CA (peer, orderers) and the peer's TLS
    certificate (chaincode server), the only client roots those endpoints accept."""
    operator_ca = site.operator_ca_cert.read_bytes()
    for node in ("peer0", *(f"orderer{o.index}" for o in org.orderers)):
        (site.identity_tls(node) / OPERATOR_CA_FILE).write_bytes(operator_ca)
    peer = (site.identity_tls("peer0") / "server.crt").read_bytes()
    (site.identity_tls("chaincode") / PEER_CERT_FILE).write_bytes(peer)


def write_yaml(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def write_json(path: Path, data: dict[str, Any], mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode)
    path.chmod(mode)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
