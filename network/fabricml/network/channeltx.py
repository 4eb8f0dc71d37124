"""The channel's genesis block, from the members' public material only (configtxgen).

Policies: MAJORITY of the members' admins for the channel, the application (membership)
and lifecycle changes; the chosen rule (MAJORITY by default) for endorsement and
lifecycle endorsement. Raft: one consenter per orderer. BFT: configtxgen itself makes
BlockValidation a signature policy over the consenters' identities with the BFT quorum."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .binaries import Binaries
from .nodeconfig import write_yaml
from .topology import CONSENSUS, ENDORSEMENT_RULES, TopologyError

PROFILE = "ConsortiumChannel"
_CHANNEL = re.compile(r"^[a-z][a-z0-9.-]{0,48}$")


@dataclass(frozen=True)
class ChannelSettings:
    channel: str = "consortium"
    consensus: str = "raft"
    endorsement: str = "MAJORITY"
    batch_timeout_ms: int = 500

    def check(self, consenters: int) -> None:
        if not _CHANNEL.match(self.channel):
            raise TopologyError(f"channel is {self.channel!r}; allowed: lowercase letters, digits, '.', '-'")
        if self.consensus not in CONSENSUS:
            raise TopologyError(f"consensus is {self.consensus!r}; allowed: {', '.join(CONSENSUS)}")
        if self.endorsement not in ENDORSEMENT_RULES:
            raise TopologyError(
                f"endorsement is {self.endorsement!r}; allowed: {', '.join(ENDORSEMENT_RULES)}"
            )
        if consenters < 1:
            raise TopologyError("at least one member must run an orderer")
        if self.consensus == "bft" and consenters < 4:
            raise TopologyError(
                f"bft consensus needs at least 4 orderer nodes, the members have {consenters}"
            )


@dataclass(frozen=True)
class Consenter:
    msp_id: str
    host: str
    port: int
    tls_cert: Path
    identity_cert: Path


@dataclass(frozen=True)
class ChannelMember:
    """One organization as the channel config names it: MSP files and orderer endpoints."""

    msp_id: str
    msp_dir: Path
    consenters: tuple[Consenter, ...]


def _signature(rule: str) -> dict[str, str]:
    return {"Type": "Signature", "Rule": rule}


def _implicit(rule: str) -> dict[str, str]:
    return {"Type": "ImplicitMeta", "Rule": rule}


def _org_section(m: ChannelMember) -> dict[str, Any]:
    i = m.msp_id
    return {
        "Name": i,
        "ID": i,
        "MSPDir": str(m.msp_dir),
        "Policies": {
            "Readers": _signature(f"OR('{i}.admin', '{i}.peer', '{i}.client', '{i}.orderer')"),
            "Writers": _signature(f"OR('{i}.admin', '{i}.client', '{i}.orderer')"),
            "Admins": _signature(f"OR('{i}.admin')"),
            "Endorsement": _signature(f"OR('{i}.peer')"),
        },
        "OrdererEndpoints": [f"{c.host}:{c.port}" for c in m.consenters],
    }


SMARTBFT_OPTIONS = {
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
RAFT_OPTIONS = {
    "TickInterval": "500ms",
    "ElectionTick": 10,
    "HeartbeatTick": 1,
    "MaxInflightBlocks": 5,
    "SnapshotIntervalSize": "16 MB",
}


def _orderer_section(settings: ChannelSettings, members: list[ChannelMember]) -> dict[str, Any]:
    consenters = [c for m in members for c in m.consenters]
    section: dict[str, Any] = {
        "BatchTimeout": f"{settings.batch_timeout_ms}ms",
        "BatchSize": {"MaxMessageCount": 500, "AbsoluteMaxBytes": "10 MB", "PreferredMaxBytes": "2 MB"},
        "Organizations": [_org_section(m) for m in members if m.consenters],
        "Policies": {
            "Readers": _implicit("ANY Readers"),
            "Writers": _implicit("ANY Writers"),
            "Admins": _implicit("MAJORITY Admins"),
            # Raft trusts any consenter's signature; under BFT configtxgen replaces this
            # with the consenters' quorum (see the module docstring).
            "BlockValidation": _implicit("ANY Writers"),
        },
        "Capabilities": {"V2_0": True},
    }
    if settings.consensus == "raft":
        section["OrdererType"] = "etcdraft"
        section["EtcdRaft"] = {
            "Consenters": [
                {
                    "Host": c.host,
                    "Port": c.port,
                    "ClientTLSCert": str(c.tls_cert),
                    "ServerTLSCert": str(c.tls_cert),
                }
                for c in consenters
            ],
            "Options": RAFT_OPTIONS,
        }
        return section
    section["OrdererType"] = "BFT"
    section["ConsenterMapping"] = [
        {"ID": i, "Host": c.host, "Port": c.port, "MSPID": c.msp_id, "Identity": str(c.identity_cert),
         "ClientTLSCert": str(c.tls_cert), "ServerTLSCert": str(c.tls_cert)}
        for i, c in enumerate(consenters, 1)
    ]  # fmt: skip
    section["SmartBFT"] = SMARTBFT_OPTIONS
    return section


def configtx(settings: ChannelSettings, members: list[ChannelMember]) -> dict[str, Any]:
    """configtx.yaml for the application channel (no system channel)."""
    rule = settings.endorsement
    return {
        "Profiles": {
            PROFILE: {
                "Policies": {
                    "Readers": _implicit("ANY Readers"),
                    "Writers": _implicit("ANY Writers"),
                    "Admins": _implicit("MAJORITY Admins"),
                },
                "Capabilities": {"V3_0": True},
                "Orderer": _orderer_section(settings, members),
                "Application": {
                    "Organizations": [_org_section(m) for m in members],
                    "Policies": {
                        "Readers": _implicit("ANY Readers"),
                        "Writers": _implicit("ANY Writers"),
                        "Admins": _implicit("MAJORITY Admins"),
                        "LifecycleEndorsement": _implicit(f"{rule} Endorsement"),
                        "Endorsement": _implicit(f"{rule} Endorsement"),
                    },
                    "Capabilities": {"V2_5": True},
                },
            }
        }
    }


class GenesisBuildError(RuntimeError):
    """configtxgen refused the channel; the message carries its output."""


def write_genesis_block(
    binaries: Binaries, settings: ChannelSettings, members: list[ChannelMember], work: Path, out: Path
) -> Path:
    """configtx.yaml in `work`, the genesis block at `out`."""
    settings.check(sum(len(m.consenters) for m in members))
    write_yaml(work / "configtx.yaml", configtx(settings, members))
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = [str(binaries.path("configtxgen")), "-profile", PROFILE, "-channelID", settings.channel,
            "-outputBlock", str(out)]  # fmt: skip
    env = {"PATH": os.environ.get("PATH", ""), "FABRIC_CFG_PATH": str(work)}
    result = subprocess.run(argv, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise GenesisBuildError(f"configtxgen failed:\n{result.stderr.strip()[-2000:]}")
    return out
