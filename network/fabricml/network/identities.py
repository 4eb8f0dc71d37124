"""Each organization's identities, issued by its own Fabric CA (never cryptogen)."""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .binaries import Binaries
from .layout import Layout
from .topology import HOST, Organization

CA_ADMIN = "caadmin"


@dataclass(frozen=True)
class IdentitySpec:
    """One identity an organization registers with its CA at bring-up."""

    name: str
    type: str  # the NodeOU: admin, client, peer or orderer
    role: str | None = None  # the `role` attribute chaincode reads from the certificate
    tls: bool = False  # nodes also get a TLS certificate
    hosts: tuple[str, ...] = ()


def identity_specs(org: Organization) -> list[IdentitySpec]:
    hosts = (HOST, "localhost")
    specs = [
        IdentitySpec("admin", "admin", tls=True, hosts=hosts),
        IdentitySpec("user1", "client"),
        IdentitySpec("trainer", "client", role="trainer"),
        IdentitySpec("inference", "client", role="inference"),
        IdentitySpec("auditor", "client", role="auditor"),
        IdentitySpec("peer0", "peer", tls=True, hosts=(org.peer_name, *hosts)),
        IdentitySpec("chaincode", "client", tls=True, hosts=(org.chaincode_name, *hosts)),
        IdentitySpec("artifacts", "client", tls=True, hosts=(org.artifacts_name, *hosts)),
    ]
    specs += [
        IdentitySpec(f"orderer{o.index}", "orderer", tls=True, hosts=(o.name, *hosts)) for o in org.orderers
    ]
    return specs


NODE_OU_CONFIG = """NodeOUs:
  Enable: true
  ClientOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: client
  PeerOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: peer
  AdminOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: admin
  OrdererOUIdentifier:
    Certificate: cacerts/ca.pem
    OrganizationalUnitIdentifier: orderer
"""


class CAError(RuntimeError):
    """A Fabric CA call failed; the message carries the command's output."""


class CertificateAuthority:
    """Talks to one organization's running Fabric CA through fabric-ca-client."""

    def __init__(self, binaries: Binaries, layout: Layout, org: Organization) -> None:
        self.binaries = binaries
        self.layout = layout
        self.org = org
        self.home = layout.ca_home(org)

    @property
    def secrets_file(self) -> Path:
        return self.home / "secrets.json"

    def secrets(self) -> dict[str, str]:
        if self.secrets_file.exists():
            return dict(json.loads(self.secrets_file.read_text()))
        return {}

    def secret(self, name: str, create: bool = True) -> str:
        """The enrollment secret of a registered identity, created on first use."""
        known = self.secrets()
        if name not in known:
            if not create:
                return ""
            known[name] = secrets.token_urlsafe(18)
            self.home.mkdir(parents=True, exist_ok=True)
            self.secrets_file.write_text(json.dumps(known, indent=2, sort_keys=True))
            self.secrets_file.chmod(0o600)
        return known[name]

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.org.ca_port}"

    @property
    def server_cert(self) -> Path:
        return self.home / "ca-cert.pem"

    def server_argv(self, executable: str | None = None) -> list[str]:
        return [
            executable or str(self.binaries.path("fabric-ca-server")),
            "start",
            "--home",
            str(self.home),
            "--address",
            HOST,
            "--port",
            str(self.org.ca_port),
            "--ca.name",
            self.org.ca_name,
            "--csr.cn",
            self.org.ca_name,
            "--csr.hosts",
            f"{HOST},localhost,{self.org.ca_name}",
            "--tls.enabled",
        ]

    def server_env(self, admin_secret: str) -> dict[str, str]:
        # The bootstrap secret goes in the environment: argv is readable by every local user.
        return {
            "FABRIC_CA_SERVER_BOOT": f"{CA_ADMIN}:{admin_secret}",
            "FABRIC_CA_SERVER_OPERATIONS_LISTENADDRESS": f"{HOST}:{self.org.port(1)}",
            "FABRIC_CA_SERVER_METRICS_PROVIDER": "prometheus",
        }

    def _client(self, *args: str, home: Path) -> str:
        argv = [
            str(self.binaries.path("fabric-ca-client")),
            *args,
            "--caname",
            self.org.ca_name,
            "--tls.certfiles",
            str(self.server_cert),
            "-H",
            str(home),
        ]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            # argv may hold an enrollment secret inside a URL: name the action, not the argv.
            raise CAError(
                f"fabric-ca-client {args[0]} at {self.org.ca_name} failed: "
                f"{result.stderr.strip().splitlines()[-1] if result.stderr.strip() else result.returncode}"
            )
        return result.stdout + result.stderr

    @property
    def registrar_home(self) -> Path:
        return self.home / "registrar"

    def enroll_registrar(self) -> None:
        self._client(
            "enroll",
            "-u",
            f"https://{CA_ADMIN}:{self.secret(CA_ADMIN)}@{HOST}:{self.org.ca_port}",
            home=self.registrar_home,
        )

    def register(self, spec: IdentitySpec, secret: str | None = None) -> None:
        args = [
            "register",
            "-u",
            self.url,
            "--id.name",
            spec.name,
            "--id.secret",
            secret or self.secret(spec.name),
            "--id.type",
            spec.type,
        ]
        if spec.role:
            # ':ecert' puts the attribute into the enrollment certificate for chaincode to read.
            args += ["--id.attrs", f"role={spec.role}:ecert"]
        try:
            self._client(*args, home=self.registrar_home)
        except CAError as exc:
            if secret is not None or "already registered" not in str(exc):
                raise

    def revoke(self, name: str, reason: str) -> bytes:
        """Revoke every certificate of `name` and return the CA's new CRL (PEM)."""
        self._client("revoke", "-u", self.url, "-e", name, "-r", reason, home=self.registrar_home)
        crl = self.registrar_home / "msp" / "crls" / "crl.pem"
        crl.unlink(missing_ok=True)
        self._client("gencrl", "-u", self.url, home=self.registrar_home)
        if not crl.exists() or not crl.read_bytes().strip():
            raise CAError(f"{self.org.ca_name} produced no certificate revocation list at {crl}")
        return crl.read_bytes()

    def list_identities(self) -> list[dict[str, str]]:
        """Identities registered at this CA: name, type, max enrollments and role attribute."""
        out = self._client("identity", "list", "-u", self.url, home=self.registrar_home)
        identities = []
        for line in out.splitlines():
            m = re.match(
                r"Name: ([^,]+), Type: ([^,]+), Affiliation: ([^,]*), Max Enrollments: ([^,]+)", line
            )
            if not m:
                continue
            role = re.search(r"\{Name:role Value:([^ }]+)", line)
            identities.append(
                {
                    "name": m.group(1),
                    "type": m.group(2),
                    "maxEnrollments": m.group(4),
                    "role": role.group(1) if role else "",
                }
            )
        return identities

    def enroll(self, spec: IdentitySpec, secret: str | None = None) -> Path:
        """Enroll into the org's identities folder; returns the identity's directory."""
        target = self.layout.identity(self.org, spec.name)
        url = f"https://{spec.name}:{secret or self.secret(spec.name)}@{HOST}:{self.org.ca_port}"
        msp = target / "msp"
        self._client("enroll", "-u", url, "-M", str(msp), "--csr.cn", spec.name, home=target)
        _normalize_msp(msp, self.server_cert)
        if spec.tls:
            raw = target / "tls-enroll"
            self._client(
                "enroll",
                "-u",
                url,
                "-M",
                str(raw),
                "--enrollment.profile",
                "tls",
                "--csr.cn",
                spec.name,
                "--csr.hosts",
                ",".join(spec.hosts),
                home=target,
            )
            tls = target / "tls"
            tls.mkdir(parents=True, exist_ok=True)
            shutil.copy(raw / "signcerts" / "cert.pem", tls / "server.crt")
            shutil.copy(next((raw / "keystore").iterdir()), tls / "server.key")
            shutil.copy(self.server_cert, tls / "ca.crt")
            shutil.rmtree(raw)
        return target

    def write_org_msp(self) -> None:
        """The organization's public MSP, as configtx.yaml puts it in the channel config."""
        self.layout.org_dir(self.org).mkdir(parents=True, exist_ok=True)
        shutil.copy(self.server_cert, self.layout.ca_cert(self.org))
        msp = self.layout.org_msp(self.org)
        for sub in ("cacerts", "tlscacerts"):
            (msp / sub).mkdir(parents=True, exist_ok=True)
            shutil.copy(self.server_cert, msp / sub / "ca.pem")
        (msp / "config.yaml").write_text(NODE_OU_CONFIG)

    def issue_all(self) -> None:
        self.enroll_registrar()
        self.write_org_msp()
        for spec in identity_specs(self.org):
            self.register(spec)
            self.enroll(spec)


def _normalize_msp(msp: Path, ca_cert: Path) -> None:
    """One CA file name in every MSP, so the NodeOU config can name it."""
    for sub in ("cacerts", "tlscacerts"):
        d = msp / sub
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        shutil.copy(ca_cert, d / "ca.pem")
    (msp / "config.yaml").write_text(NODE_OU_CONFIG)
