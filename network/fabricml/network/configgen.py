"""Files and environments derived from the topology: configtx, core.yaml, node env, profiles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from .binaries import Binaries
from .layout import Layout
from .topology import HOST, Orderer, Organization, Topology

PROFILE = "ConsortiumChannel"
BUILDER_CONFIG_ENV = "CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG"


def _signature(rule: str) -> dict[str, str]:
    return {"Type": "Signature", "Rule": rule}


def _implicit(rule: str) -> dict[str, str]:
    return {"Type": "ImplicitMeta", "Rule": rule}


def _org_section(org: Organization, layout: Layout) -> dict[str, Any]:
    m = org.msp_id
    return {
        "Name": m,
        "ID": m,
        "MSPDir": str(layout.org_msp(org)),
        "Policies": {
            "Readers": _signature(f"OR('{m}.admin', '{m}.peer', '{m}.client', '{m}.orderer')"),
            "Writers": _signature(f"OR('{m}.admin', '{m}.client', '{m}.orderer')"),
            "Admins": _signature(f"OR('{m}.admin')"),
            "Endorsement": _signature(f"OR('{m}.peer')"),
        },
        "OrdererEndpoints": [o.address for o in org.orderers],
    }


def _orderer_section(topo: Topology, layout: Layout) -> dict[str, Any]:
    section: dict[str, Any] = {
        "BatchTimeout": f"{topo.batch_timeout_ms}ms",
        "BatchSize": {
            "MaxMessageCount": 500,
            "AbsoluteMaxBytes": "10 MB",
            "PreferredMaxBytes": "2 MB",
        },
        "Organizations": [_org_section(org, layout) for org in topo.organizations if org.orderers],
        "Policies": {
            "Readers": _implicit("ANY Readers"),
            "Writers": _implicit("ANY Writers"),
            "Admins": _implicit("MAJORITY Admins"),
            "BlockValidation": _implicit("ANY Writers"),
        },
        "Capabilities": {"V2_0": True},
    }
    orgs = {org.name: org for org in topo.organizations}

    def tls(o: Orderer) -> str:
        return str(layout.tls(orgs[o.org], f"orderer{o.index}") / "server.crt")

    if topo.consensus == "raft":
        section["OrdererType"] = "etcdraft"
        section["EtcdRaft"] = {
            "Consenters": [
                {"Host": HOST, "Port": o.port, "ClientTLSCert": tls(o), "ServerTLSCert": tls(o)}
                for o in topo.orderers
            ],
            "Options": {
                "TickInterval": "500ms",
                "ElectionTick": 10,
                "HeartbeatTick": 1,
                "MaxInflightBlocks": 5,
                "SnapshotIntervalSize": "16 MB",
            },
        }
    else:
        section["OrdererType"] = "BFT"
        section["ConsenterMapping"] = [
            {
                "ID": i,
                "Host": HOST,
                "Port": o.port,
                "MSPID": orgs[o.org].msp_id,
                "Identity": str(layout.msp(orgs[o.org], f"orderer{o.index}") / "signcerts" / "cert.pem"),
                "ClientTLSCert": tls(o),
                "ServerTLSCert": tls(o),
            }
            for i, o in enumerate(topo.orderers, 1)
        ]
        section["SmartBFT"] = {
            "RequestBatchMaxInterval": "200ms",
            "RequestForwardTimeout": "5s",
            "RequestComplainTimeout": "20s",
            "RequestAutoRemoveTimeout": "3m0s",
            "ViewChangeResendInterval": "5s",
            "ViewChangeTimeout": "20s",
            "LeaderHeartbeatTimeout": "1m0s",
            "CollectTimeout": "1s",
            "IncomingMessageBufferSize": 200,
            "RequestPoolSize": 100000,
            "LeaderHeartbeatCount": 10,
        }
    return section


def configtx(topo: Topology, layout: Layout) -> dict[str, Any]:
    """configtx.yaml for the application channel (no system channel)."""
    return {
        "Profiles": {
            PROFILE: {
                "Policies": {
                    "Readers": _implicit("ANY Readers"),
                    "Writers": _implicit("ANY Writers"),
                    "Admins": _implicit("MAJORITY Admins"),
                },
                "Capabilities": {"V3_0": True},
                "Orderer": _orderer_section(topo, layout),
                "Application": {
                    "Organizations": [_org_section(org, layout) for org in topo.organizations],
                    "Policies": {
                        "Readers": _implicit("ANY Readers"),
                        "Writers": _implicit("ANY Writers"),
                        "Admins": _implicit("MAJORITY Admins"),
                        "LifecycleEndorsement": _implicit(f"{topo.endorsement} Endorsement"),
                        "Endorsement": _implicit(f"{topo.endorsement} Endorsement"),
                    },
                    "Capabilities": {"V2_5": True},
                },
            }
        }
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
        },
    ]
    return core


def peer_env(org: Organization, layout: Layout) -> dict[str, str]:
    home = layout.node_home(org.peer_name)
    tls = layout.tls(org, "peer0")
    return {
        "FABRIC_CFG_PATH": str(home),
        "CORE_PEER_ID": org.peer_name,
        "CORE_PEER_ADDRESS": org.peer_address,
        "CORE_PEER_LISTENADDRESS": org.peer_address,
        "CORE_PEER_CHAINCODEADDRESS": f"{HOST}:{org.port(11)}",
        "CORE_PEER_CHAINCODELISTENADDRESS": f"{HOST}:{org.port(11)}",
        "CORE_PEER_GOSSIP_EXTERNALENDPOINT": org.peer_address,
        "CORE_PEER_GOSSIP_BOOTSTRAP": org.peer_address,
        "CORE_PEER_LOCALMSPID": org.msp_id,
        "CORE_PEER_MSPCONFIGPATH": str(layout.msp(org, "peer0")),
        "CORE_PEER_TLS_ENABLED": "true",
        "CORE_PEER_TLS_CERT_FILE": str(tls / "server.crt"),
        "CORE_PEER_TLS_KEY_FILE": str(tls / "server.key"),
        "CORE_PEER_TLS_ROOTCERT_FILE": str(tls / "ca.crt"),
        "CORE_PEER_FILESYSTEMPATH": str(home / "data"),
        "CORE_LEDGER_SNAPSHOTS_ROOTDIR": str(home / "snapshots"),
        "CORE_OPERATIONS_LISTENADDRESS": f"{HOST}:{org.peer_operations_port}",
        "CORE_METRICS_PROVIDER": "prometheus",
    }


def builder_config_file(org: Organization, layout: Layout) -> Path:
    """Per-peer values for connection.json; the peer gets them in BUILDER_CONFIG_ENV."""
    return layout.node_home(org.peer_name) / "ccaas-builder.json"


def chaincode_connection(org: Organization, layout: Layout) -> dict[str, str]:
    """This org's chaincode server, reached over mutual TLS with the peer's TLS identity."""
    tls = layout.tls(org, "peer0")
    return {
        "address": f"{HOST}:{org.chaincode_port}",
        "root_cert": (tls / "ca.crt").read_text(),
        "client_cert": (tls / "server.crt").read_text(),
        "client_key": (tls / "server.key").read_text(),
    }


CONNECTION_TEMPLATE = {
    "address": "{{.address}}",
    "dial_timeout": "10s",
    "tls_required": True,
    "client_auth_required": True,
    "root_cert": "{{.root_cert}}",
    "client_cert": "{{.client_cert}}",
    "client_key": "{{.client_key}}",
}


def chaincode_env(org: Organization, layout: Layout, package_id: str) -> dict[str, str]:
    tls = layout.tls(org, "chaincode")
    return {
        "CHAINCODE_ID": package_id,
        "CHAINCODE_SERVER_ADDRESS": f"{HOST}:{org.chaincode_port}",
        "CHAINCODE_LOCAL_MSPID": org.msp_id,
        "CHAINCODE_TLS_CERT_FILE": str(tls / "server.crt"),
        "CHAINCODE_TLS_KEY_FILE": str(tls / "server.key"),
        "CHAINCODE_TLS_CLIENT_CA_FILE": str(tls / "ca.crt"),
    }


def orderer_env(org: Organization, orderer: Orderer, layout: Layout) -> dict[str, str]:
    home = layout.node_home(orderer.name)
    tls = layout.tls(org, f"orderer{orderer.index}")
    cert, key, ca = str(tls / "server.crt"), str(tls / "server.key"), str(tls / "ca.crt")
    return {
        "FABRIC_CFG_PATH": str(home),
        "ORDERER_GENERAL_LISTENADDRESS": HOST,
        "ORDERER_GENERAL_LISTENPORT": str(orderer.port),
        "ORDERER_GENERAL_LOCALMSPID": org.msp_id,
        "ORDERER_GENERAL_LOCALMSPDIR": str(layout.msp(org, f"orderer{orderer.index}")),
        "ORDERER_GENERAL_TLS_ENABLED": "true",
        "ORDERER_GENERAL_TLS_PRIVATEKEY": key,
        "ORDERER_GENERAL_TLS_CERTIFICATE": cert,
        "ORDERER_GENERAL_TLS_ROOTCAS": f"[{ca}]",
        "ORDERER_GENERAL_CLUSTER_CLIENTCERTIFICATE": cert,
        "ORDERER_GENERAL_CLUSTER_CLIENTPRIVATEKEY": key,
        "ORDERER_GENERAL_CLUSTER_ROOTCAS": f"[{ca}]",
        "ORDERER_GENERAL_BOOTSTRAPMETHOD": "none",
        "ORDERER_CHANNELPARTICIPATION_ENABLED": "true",
        "ORDERER_ADMIN_LISTENADDRESS": f"{HOST}:{orderer.admin_port}",
        "ORDERER_ADMIN_TLS_ENABLED": "true",
        "ORDERER_ADMIN_TLS_CERTIFICATE": cert,
        "ORDERER_ADMIN_TLS_PRIVATEKEY": key,
        "ORDERER_ADMIN_TLS_ROOTCAS": f"[{ca}]",
        "ORDERER_ADMIN_TLS_CLIENTAUTHREQUIRED": "true",
        "ORDERER_ADMIN_TLS_CLIENTROOTCAS": f"[{ca}]",
        "ORDERER_OPERATIONS_LISTENADDRESS": f"{HOST}:{orderer.operations_port}",
        "ORDERER_METRICS_PROVIDER": "prometheus",
        "ORDERER_FILELEDGER_LOCATION": str(home / "ledger"),
        "ORDERER_CONSENSUS_WALDIR": str(home / "etcdraft" / "wal"),
        "ORDERER_CONSENSUS_SNAPDIR": str(home / "etcdraft" / "snapshot"),
    }


def connection_profile(topo: Topology, org: Organization, layout: Layout) -> dict[str, Any]:
    """A common connection profile, plus the org's identities for `--org` in the CLI."""
    from .identities import identity_specs

    identities = {}
    for spec in identity_specs(org):
        if spec.type in ("peer", "orderer"):
            continue
        msp = layout.msp(org, spec.name)
        identities[spec.name] = {
            "type": spec.type,
            "role": spec.role,
            "mspDir": str(msp),
            "certificate": str(msp / "signcerts" / "cert.pem"),
            "keystore": str(msp / "keystore"),
        }
    return {
        "name": f"{topo.name}-{org.name}",
        "version": "1.0.0",
        "client": {"organization": org.name},
        "channel": topo.channel,
        "chaincode": topo.chaincode_name,
        "organizations": {
            o.name: {
                "mspid": o.msp_id,
                "peers": [o.peer_name],
                "certificateAuthorities": [o.ca_name],
            }
            for o in topo.organizations
        },
        "peers": {
            o.peer_name: {
                "url": f"grpcs://{o.peer_address}",
                "tlsCACerts": {"path": str(layout.ca_cert(o))},
                "grpcOptions": {"ssl-target-name-override": o.peer_name},
            }
            for o in topo.organizations
        },
        "orderers": {
            o.name: {
                "url": f"grpcs://{o.address}",
                "tlsCACerts": {"path": str(layout.ca_cert(topo.org(o.org)))},
            }
            for o in topo.orderers
        },
        "certificateAuthorities": {
            org.ca_name: {
                "url": f"https://{HOST}:{org.ca_port}",
                "caName": org.ca_name,
                "tlsCACerts": {"path": str(layout.ca_cert(org))},
            }
        },
        "identities": identities,
        # Identities enrolled later (`fabricml identity enroll`) are found here by name.
        "identitiesDir": str(layout.org_dir(org) / "identities"),
        "artifactStore": str(layout.artifact_store(org)),
        "artifactServers": {
            o.name: {
                "url": f"https://{HOST}:{o.artifacts_port}",
                "tlsCACerts": {"path": str(layout.ca_cert(o))},
            }
            for o in topo.organizations
        },
    }


def write_yaml(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def write_json(path: Path, data: dict[str, Any], mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode)
    path.chmod(mode)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
