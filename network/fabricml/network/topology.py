"""The local consortium file: organizations (each one site), port plan and channel settings."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# Deprecated: addresses are per organization now (`Organization.host`). Kept for code
# that has not moved to `org.host` yet; topologies that want it say `host: 127.0.0.1`.
HOST = "127.0.0.1"
LOOPBACK_BATCH_TIMEOUT, SITES_BATCH_TIMEOUT = "100ms", "500ms"  # see default_batch_timeout
PORTS_PER_ORG = 100
MAX_ORDERERS_PER_ORG = 4
CONSENSUS = ("raft", "bft")
ENDORSEMENT_RULES = ("MAJORITY", "ANY", "ALL")
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
_CHANNEL = re.compile(r"^[a-z][a-z0-9.-]{0,48}$")
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,31}$")
_MSP_ID = re.compile(r"^[A-Za-z][A-Za-z0-9.-]{0,63}$")
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")

# Offsets inside an organization's block of ports.
CA_PORT, CA_OPS_PORT = 0, 1
PEER_PORT, PEER_CC_PORT, PEER_OPS_PORT = 10, 11, 12
ORDERER_PORT = 20  # orderer k uses 20+3k (listen), 21+3k (admin), 22+3k (operations)
CHAINCODE_PORT = 40
ARTIFACTS_PORT = 50
API_PORT = 60  # the org's admin REST API and dashboard (mutual TLS)


class TopologyError(ValueError):
    """The topology file is invalid; the message names the field and what is allowed."""


@dataclass(frozen=True)
class Orderer:
    org: str
    index: int
    port: int
    admin_port: int
    operations_port: int
    host: str

    @property
    def name(self) -> str:
        return f"orderer{self.index}.{self.org}"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def default_msp_id(name: str) -> str:
    """org1 -> Org1MSP, city-hospital -> CityHospitalMSP."""
    return name.replace("-", " ").title().replace(" ", "") + "MSP"


@dataclass(frozen=True)
class Organization:
    """One organization's site: its names, the address its nodes use and its ports."""

    name: str
    index: int
    base_port: int
    orderer_count: int
    host: str  # every node listens on and advertises this address
    extra_hosts: tuple[str, ...] = ()  # more names its TLS certificates carry
    msp: str = ""  # the MSP ID; empty means derived from the name

    @property
    def msp_id(self) -> str:
        return self.msp or default_msp_id(self.name)

    def address(self, port: int) -> str:
        return f"{self.host}:{port}"

    @property
    def tls_hosts(self) -> tuple[str, ...]:
        """Names every TLS server certificate of the site carries (besides the node's own)."""
        return (self.host, *self.extra_hosts)

    @property
    def ca_name(self) -> str:
        return f"ca.{self.name}"

    @property
    def peer_name(self) -> str:
        return f"peer0.{self.name}"

    @property
    def chaincode_name(self) -> str:
        return f"chaincode.{self.name}"

    def port(self, offset: int) -> int:
        return self.base_port + offset

    @property
    def ca_port(self) -> int:
        return self.port(CA_PORT)

    @property
    def peer_port(self) -> int:
        return self.port(PEER_PORT)

    @property
    def peer_address(self) -> str:
        return self.address(self.peer_port)

    @property
    def peer_operations_port(self) -> int:
        return self.port(PEER_OPS_PORT)

    @property
    def chaincode_port(self) -> int:
        return self.port(CHAINCODE_PORT)

    @property
    def artifacts_name(self) -> str:
        return f"artifacts.{self.name}"

    @property
    def artifacts_port(self) -> int:
        return self.port(ARTIFACTS_PORT)

    @property
    def artifacts_url(self) -> str:
        return f"https://{self.address(self.artifacts_port)}"

    @property
    def revocations_name(self) -> str:
        """The site's follower of members' revocation lists (no port)."""
        return f"revocations.{self.name}"

    @property
    def api_name(self) -> str:
        return f"api.{self.name}"

    @property
    def api_port(self) -> int:
        return self.port(API_PORT)

    @property
    def orderers(self) -> list[Orderer]:
        return [
            Orderer(
                org=self.name,
                index=k,
                port=self.port(ORDERER_PORT + 3 * k),
                admin_port=self.port(ORDERER_PORT + 1 + 3 * k),
                operations_port=self.port(ORDERER_PORT + 2 + 3 * k),
                host=self.host,
            )
            for k in range(self.orderer_count)
        ]

    def named_ports(self) -> dict[str, int]:
        """Every port this organization's processes listen on, by what uses it."""
        ports = {
            f"{self.ca_name} (CA)": self.ca_port,
            f"{self.ca_name} (operations)": self.port(CA_OPS_PORT),
            f"{self.peer_name} (peer)": self.peer_port,
            f"{self.peer_name} (chaincode listener)": self.port(PEER_CC_PORT),
            f"{self.peer_name} (operations)": self.peer_operations_port,
            f"{self.chaincode_name} (chaincode server)": self.chaincode_port,
            f"{self.artifacts_name} (artifact store)": self.artifacts_port,
            f"{self.api_name} (admin API)": self.api_port,
        }
        for o in self.orderers:
            ports[f"{o.name} (orderer)"] = o.port
            ports[f"{o.name} (admin)"] = o.admin_port
            ports[f"{o.name} (operations)"] = o.operations_port
        return ports


@dataclass(frozen=True)
class Topology:
    name: str
    channel: str
    consensus: str
    endorsement: str
    chaincode_name: str
    chaincode_version: str
    base_port: int
    organizations: list[Organization] = field(default_factory=list)
    source: Path | None = None
    batch_timeout_ms: int = 500  # how long an orderer waits to fill a block: latency vs block count

    @property
    def orderers(self) -> list[Orderer]:
        return [o for org in self.organizations for o in org.orderers]

    def org(self, name: str) -> Organization:
        for org in self.organizations:
            if org.name == name:
                return org
        known = ", ".join(o.name for o in self.organizations)
        raise TopologyError(f"unknown organization {name!r}; this topology has: {known}")

    def named_ports(self) -> dict[str, int]:
        ports: dict[str, int] = {}
        for org in self.organizations:
            ports.update(org.named_ports())
        return ports


def load(path: Path) -> Topology:
    """Read and validate a topology file."""
    return parse(read_yaml(path, "topology file"), source=path)


def read_yaml(path: Path, what: str, error: type[TopologyError] = TopologyError, hint: str = "") -> Any:
    """The YAML in `what` ("topology file", "site file"): `error` names the file when it is
    missing (followed by `hint`) or not valid YAML."""
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist{hint}") from None
    except yaml.YAMLError as exc:
        raise error(f"{what} {path} is not valid YAML: {exc}") from None


def parse(raw: Any, source: Path | None = None) -> Topology:
    if not isinstance(raw, dict):
        raise TopologyError("topology must be a mapping with name, channel and organizations")
    name = _text(raw, "name", "fabricml", _NAME, "lowercase letters, digits and '-'")
    channel = _text(raw, "channel", "consortium", _CHANNEL, "lowercase letters, digits, '.' and '-'")
    consensus = str(raw.get("consensus", "raft"))
    if consensus not in CONSENSUS:
        raise TopologyError(f"consensus is {consensus!r}; allowed: {', '.join(CONSENSUS)}")
    endorsement = str(raw.get("endorsement", "MAJORITY")).upper()
    if endorsement not in ENDORSEMENT_RULES:
        allowed = ", ".join(ENDORSEMENT_RULES)
        raise TopologyError(f"endorsement is {endorsement!r}; allowed: {allowed}")
    cc = raw.get("chaincode") or {}
    if not isinstance(cc, dict):
        raise TopologyError("chaincode must be a mapping with name and version")
    cc_name = _text(cc, "name", "fabricml", _NAME, "lowercase letters, digits and '-'")
    cc_version = _text(cc, "version", "1.0", _VERSION, "letters, digits, '.', '+', '_' and '-'")
    base = (raw.get("ports") or {}).get("base", 7000)
    if not isinstance(base, int) or not 1024 <= base <= 60000:
        raise TopologyError(f"ports.base is {base!r}; allowed: an integer from 1024 to 60000")
    orgs_raw = raw.get("organizations")
    if not isinstance(orgs_raw, list) or not orgs_raw:
        raise TopologyError("organizations must be a non-empty list of {name: ...}")
    orgs = [_organization(i, o, base) for i, o in enumerate(orgs_raw)]
    names = [o.name for o in orgs]
    if len(set(names)) != len(names):
        raise TopologyError(f"organization names must be unique, got {names}")
    msp_ids = [o.msp_id for o in orgs]
    if len(set(msp_ids)) != len(msp_ids):
        raise TopologyError(f"MSP IDs must be unique, got {msp_ids}")
    if max(o.base_port for o in orgs) + PORTS_PER_ORG > 65535:
        raise TopologyError(f"ports.base {base} leaves no room for {len(orgs)} organizations")
    batch = batch_timeout_ms(raw.get("batchTimeout", default_batch_timeout(orgs)))
    topo = Topology(name, channel, consensus, endorsement, cc_name, cc_version, base, orgs, source, batch)
    if not topo.orderers:
        raise TopologyError("at least one organization must run an orderer")
    if consensus == "bft" and len(topo.orderers) < 4:
        raise TopologyError(
            f"bft consensus needs at least 4 orderer nodes, the topology has {len(topo.orderers)}"
        )
    return topo


def default_batch_timeout(orgs: list[Organization]) -> str:
    """The batchTimeout when the topology names none. A block is cut that long after its
    first transaction, and a federated round waits for two blocks in a row: on one
    machine (every organization on a loopback address) 100 ms, which the agents' calls
    of one step usually reach together (docs/federation.md, "Compared with Flower");
    between sites 500 ms, leaving room for the network's own delays."""
    loopback = all(_is_loopback(o.host) for o in orgs)
    return LOOPBACK_BATCH_TIMEOUT if loopback else SITES_BATCH_TIMEOUT


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def batch_timeout_ms(value: Any) -> int:
    """ "250ms" or "2s" to milliseconds, 10 ms to 10 s."""
    m = re.fullmatch(r"(\d+)(ms|s)", str(value))
    ms = (int(m.group(1)) * (1000 if m.group(2) == "s" else 1)) if m else -1
    if not 10 <= ms <= 10_000:
        raise TopologyError(f"batchTimeout is {value!r}; allowed: 10ms to 10s, written like 500ms or 2s")
    return ms


def default_host(index: int) -> str:
    """Organization i of a one-machine consortium gets its own loopback address, 127.0.<i+1>.1."""
    return f"127.0.{index + 1}.1"


def organization(index: int, raw: Any, base: int, prefix: str, default_host_: str | None) -> Organization:
    """One organization from a mapping (a topology entry or a site file); `prefix` names it in errors."""
    if not isinstance(raw, dict):
        raise TopologyError(f"{prefix.rstrip('.')} must be a mapping like {{name: org1}}")
    name = _text(raw, "name", None, _NAME, "lowercase letters, digits and '-'", prefix)
    orderers = raw.get("orderers", 1)
    if type(orderers) is not int or not 0 <= orderers <= MAX_ORDERERS_PER_ORG:
        raise TopologyError(f"{prefix}orderers is {orderers!r}; allowed: 0 to {MAX_ORDERERS_PER_ORG}")
    host = check_host(raw.get("host", default_host_), f"{prefix}host")
    extra = raw.get("hostnames", [])
    if not isinstance(extra, list):
        raise TopologyError(f"{prefix}hostnames must be a list of DNS names or IPv4 addresses")
    extra_hosts = tuple(check_host(h, f"{prefix}hostnames[{i}]") for i, h in enumerate(extra))
    msp = raw.get("mspId", "")
    if msp and not _MSP_ID.match(str(msp)):
        raise TopologyError(f"{prefix}mspId is {msp!r}; allowed: a letter, then letters, digits, '.', '-'")
    return Organization(name, index, base, orderers, host, extra_hosts, str(msp))


def check_host(value: Any, field_name: str) -> str:
    """An IPv4 address or a DNS name, as nodes listen on and certificates name it."""
    if value is None:
        raise TopologyError(f"{field_name} is required: the IPv4 address or DNS name the nodes use")
    text = str(value).strip().lower()
    try:
        if ipaddress.ip_address(text).version == 4:
            return text
    except ValueError:
        if _HOSTNAME.match(text) and not text.replace(".", "").isdigit():
            return text
    raise TopologyError(f"{field_name} is {value!r}; allowed: an IPv4 address or a DNS name")


def _organization(index: int, raw: Any, base: int) -> Organization:
    """Organization i uses base + 100*i unless it names its own `ports: {base: N}`."""
    prefix = f"organizations[{index}]."
    own = raw.get("ports") if isinstance(raw, dict) else None
    org_base = base + PORTS_PER_ORG * index
    if own is not None:
        given = own.get("base") if isinstance(own, dict) else None
        if type(given) is not int or not 1024 <= given <= 65535 - PORTS_PER_ORG:
            raise TopologyError(f"{prefix}ports.base is {given!r}; allowed: 1024 to {65535 - PORTS_PER_ORG}")
        org_base = given
        raw = {k: v for k, v in raw.items() if k != "ports"}
    return organization(index, raw, org_base, prefix, default_host(index))


def _text(
    raw: dict[str, Any],
    key: str,
    default: str | None,
    pattern: re.Pattern[str],
    allowed: str,
    prefix: str = "",
) -> str:
    value = raw.get(key, default)
    if value is None:
        raise TopologyError(f"{prefix}{key} is required")
    value = str(value)
    if not pattern.match(value):
        raise TopologyError(f"{prefix}{key} is {value!r}; allowed: {allowed}")
    return value
