"""Each organization's identities, issued by its own Fabric CA (never cryptogen).

One Fabric CA server per site runs three CAs: the enrollment CA (MSP identities), a TLS
CA, and an operator CA that issues the admin's operator certificate only. Keeping them
apart means no TLS key is also a valid MSP identity of the org, and no TLS key of a node
or service opens the orderers' admin endpoint or the nodes' /logspec."""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from .binaries import Binaries
from .layout import Layout, SiteLayout
from .topology import Organization

CA_ADMIN = "caadmin"
API_REGISTRAR = "registrar"
# What the API's registrar may do; the quoted value holds a comma (fabric-ca-client's syntax).
API_REGISTRAR_ATTRS = (
    '"hf.Registrar.Roles=client,admin",hf.Registrar.Attributes=role,hf.Revoker=true,hf.GenCRL=true'
)
OPERATOR = "operator"
# Fabric CA's numeric error codes (fabric-ca lib/caerrors), as fabric-ca-client prints them.
DUPLICATE_IDENTITY = 74
AUTHENTICATION_FAILURE = 20
AUTHORIZATION_FAILURE = 71
IDENTITY_NOT_FOUND = 63
_CODE = re.compile(r"Error Code: (\d+)")


@dataclass(frozen=True)
class IdentitySpec:
    """One identity an organization registers with its CA."""

    name: str
    type: str  # the NodeOU: admin, client, peer or orderer
    role: str | None = None  # the `role` attribute chaincode reads from the certificate
    tls: bool = False  # also a TLS certificate, from the TLS CA
    hosts: tuple[str, ...] = ()


def identity_specs(org: Organization) -> list[IdentitySpec]:
    """Every identity `fabricml site init` issues; nodes' TLS certificates carry the
    node's name and the site's configured addresses only."""
    hosts = org.tls_hosts
    specs = [
        IdentitySpec("admin", "admin", tls=True, hosts=hosts),  # its TLS key signs in to osnadmin
        IdentitySpec("user1", "client"),
        IdentitySpec("trainer", "client", role="trainer"),
        IdentitySpec("inference", "client", role="inference"),
        IdentitySpec("auditor", "client", role="auditor"),
        IdentitySpec("peer0", "peer", tls=True, hosts=(org.peer_name, *hosts)),
        IdentitySpec("chaincode", "client", tls=True, hosts=(org.chaincode_name, *hosts)),
        IdentitySpec("artifacts", "client", tls=True, hosts=(org.artifacts_name, *hosts)),
        api_identity(org),
    ]
    specs += [
        IdentitySpec(f"orderer{o.index}", "orderer", tls=True, hosts=(o.name, *hosts)) for o in org.orderers
    ]
    return specs


def api_identity(org: Organization) -> IdentitySpec:
    """The identity whose TLS certificate the org's admin API serves with."""
    return IdentitySpec("api", "client", tls=True, hosts=(org.api_name, *org.tls_hosts))


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
    """A Fabric CA call failed; `code` is the CA's numeric error code when it sent one."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


def site_paths(paths: Layout | SiteLayout, org: Organization) -> SiteLayout:
    """A consortium layout names many sites; a site layout is one."""
    return paths.site(org) if isinstance(paths, Layout) else paths


class CertificateAuthority:
    """Runs and talks to one organization's Fabric CA server (enrollment CA, TLS CA, operator CA)."""

    def __init__(
        self, binaries: Binaries, paths: Layout | SiteLayout, org: Organization, least_privilege: bool = False
    ) -> None:
        self.binaries = binaries
        self.least_privilege = least_privilege  # act as the API's registrar, not the bootstrap one
        self.site = site_paths(paths, org)
        self.org = org
        self.home = self.site.ca_home

    @property
    def tls_ca_name(self) -> str:
        return f"tlsca.{self.org.name}"

    @property
    def operator_ca_name(self) -> str:
        return f"opsca.{self.org.name}"

    @property
    def secrets_file(self) -> Path:
        return self.home / "secrets.json"

    def secrets(self) -> dict[str, str]:
        if self.secrets_file.exists():
            return dict(json.loads(self.secrets_file.read_text()))
        return {}

    def secret(self, name: str, create: bool = True) -> str:
        """The enrollment secret of a registered identity, created on first use (file 0600)."""
        known = self.secrets()
        if name not in known:
            if not create:
                return ""
            known[name] = secrets.token_urlsafe(18)
            self.home.mkdir(parents=True, exist_ok=True)
            self.secrets_file.touch(0o600)
            self.secrets_file.write_text(json.dumps(known, indent=2, sort_keys=True))
        return known[name]

    @property
    def url(self) -> str:
        return f"https://{self.org.address(self.org.ca_port)}"

    @property
    def server_cert(self) -> Path:
        """The enrollment CA's certificate; it also signs the CA server's HTTPS certificate."""
        return self.home / "ca-cert.pem"

    @property
    def tls_ca_cert(self) -> Path:
        return self.site.tls_ca_home / "ca-cert.pem"

    def server_argv(self, executable: str | None = None) -> list[str]:
        hosts = ",".join((*self.org.tls_hosts, self.org.ca_name))
        return [
            executable or str(self.binaries.path("fabric-ca-server")),
            "start",
            "--home", str(self.home),
            "--address", self.org.host,
            "--port", str(self.org.ca_port),
            "--ca.name", self.org.ca_name,
            "--csr.cn", self.org.ca_name,
            "--csr.hosts", hosts,
            "--tls.enabled",
            "--cafiles", "tlsca/fabric-ca-server-config.yaml,opsca/fabric-ca-server-config.yaml",
            # No lockout after wrong secrets (R6): anyone who reaches the port could lock any
            # identity out, and every secret we issue is 144 random bits, used once.
            "--cfg.identities.passwordattempts", "0",
        ]  # fmt: skip

    def server_env(self, admin_secret: str) -> dict[str, str]:
        # The bootstrap secret goes in the environment: argv is readable by every local user.
        return {
            "FABRIC_CA_SERVER_BOOT": f"{CA_ADMIN}:{admin_secret}",
            "FABRIC_CA_SERVER_OPERATIONS_LISTENADDRESS": self.org.address(self.org.port(1)),
            "FABRIC_CA_SERVER_METRICS_PROVIDER": "prometheus",
        }

    def write_tls_ca_config(self) -> None:
        """The TLS CA's and the operator CA's settings; their registrars' secrets are in these
        files, mode 0600."""
        self._write_ca_config(self.tls_ca_name, "TLS", self.site.tls_ca_home, f"{CA_ADMIN}@tls")
        self._write_ca_config(
            self.operator_ca_name, "operator", self.site.operator_ca_home, f"{CA_ADMIN}@ops"
        )

    def _write_ca_config(self, name: str, unit: str, home: Path, secret: str) -> None:
        config = {
            "ca": {"name": name},
            "csr": {"cn": name, "names": [{"O": self.org.msp_id, "OU": unit}]},
            "cfg": {"identities": {"passwordattempts": 0}},  # as the enrollment CA's (server_argv)
            "registry": {
                "maxenrollments": -1,  # the registrar's; every identity it registers gets 1
                "identities": [
                    {
                        "name": CA_ADMIN,
                        "pass": self.secret(secret),
                        "type": "client",
                        "affiliation": "",
                        "attrs": {
                            "hf.Registrar.Roles": "*",
                            "hf.Registrar.DelegateRoles": "*",
                            "hf.Registrar.Attributes": "*",
                            "hf.Revoker": True,
                            "hf.GenCRL": True,
                            "hf.AffiliationMgr": True,
                            "hf.IntermediateCA": False,
                        },
                    }
                ],
            },
        }
        path = home / "fabric-ca-server-config.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(0o600)
        path.write_text(yaml.safe_dump(config, sort_keys=False))

    def _client(self, *args: str, home: Path, tls_ca: bool = False, caname: str | None = None) -> str:
        argv = [
            str(self.binaries.path("fabric-ca-client")),
            *args,
            "--caname", caname or (self.tls_ca_name if tls_ca else self.org.ca_name),
            "--tls.certfiles", str(self.server_cert),
            "-H", str(home),
        ]  # fmt: skip
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            # argv may hold an enrollment secret inside a URL: name the action, not the argv.
            out = result.stderr.strip()
            last = out.splitlines()[-1] if out else f"exit {result.returncode}"
            code = _CODE.search(out)
            raise CAError(
                f"fabric-ca-client {args[0]} at {self.org.ca_name} failed: {last}",
                int(code.group(1)) if code else None,
            )
        return result.stdout + result.stderr

    @property
    def bootstrap_home(self) -> Path:
        """The bootstrap registrar (caadmin, every hf.* right): bring-up and the operator's CLI."""
        return self.home / CA_ADMIN

    @property
    def registrar_home(self) -> Path:
        """The API's registrar: clients and admins only, the `role` attribute, revoke, gencrl."""
        return self.home / API_REGISTRAR

    @property
    def acting_home(self) -> Path:
        return self.registrar_home if self.least_privilege else self.bootstrap_home

    @property
    def tls_registrar_home(self) -> Path:
        return self.home / "tls-registrar"

    @property
    def operator_registrar_home(self) -> Path:
        return self.home / "ops-registrar"

    def _enroll_url(self, name: str, secret: str) -> str:
        return f"https://{name}:{secret}@{self.org.address(self.org.ca_port)}"

    def enroll_registrar(self) -> None:
        """Enroll each CA's bootstrap registrar (their maxenrollments is -1: a rerun enrolls again)."""
        for home, secret, caname in (
            (self.bootstrap_home, CA_ADMIN, self.org.ca_name),
            (self.tls_registrar_home, f"{CA_ADMIN}@tls", self.tls_ca_name),
            (self.operator_registrar_home, f"{CA_ADMIN}@ops", self.operator_ca_name),
        ):
            url = self._enroll_url(CA_ADMIN, self.secret(secret))
            self._client("enroll", "-u", url, home=home, caname=caname)

    def register(self, spec: IdentitySpec, secret: str | None = None, attrs: str | None = None) -> None:
        """Register at the enrollment CA (and the TLS CA for TLS identities), for one enrollment:
        renewal is `reenroll`, with the key.

        With a given secret, an identity registered before is an error (code 74); with a
        bring-up secret it is the same identity registered by an earlier, interrupted run."""
        args = ["register", "-u", self.url, "--id.name", spec.name, "--id.secret",
                secret or self.secret(spec.name), "--id.type", spec.type,
                "--id.maxenrollments", "1"]  # fmt: skip
        if spec.role or attrs:
            # ':ecert' puts the attribute into the enrollment certificate for chaincode to read.
            args += ["--id.attrs", attrs or f"role={spec.role}:ecert"]
        homes = [(self.acting_home, False)] + ([(self.tls_registrar_home, True)] if spec.tls else [])
        for home, tls_ca in homes:
            try:
                self._client(*args, home=home, tls_ca=tls_ca)
            except CAError as exc:
                if secret is not None or exc.code != DUPLICATE_IDENTITY:
                    raise

    def revoke(self, name: str, reason: str) -> bytes:
        """Revoke every certificate of `name` and return the CA's new CRL (PEM)."""
        self._client("revoke", "-u", self.url, "-e", name, "-r", reason, home=self.acting_home)
        return self.revocation_list()

    @property
    def crl_file(self) -> Path:
        """Where `gencrl` writes the CA's revocation list (what the org's own servers read)."""
        return self.registrar_home / "msp" / "crls" / "crl.pem"

    def revocation_list(self) -> bytes:
        """A fresh CRL (PEM) from the CA: every certificate it revoked, signed by it. Asked for
        with the API's registrar (it has hf.GenCRL), so the list lands where its readers look."""
        crl = self.crl_file
        crl.unlink(missing_ok=True)
        self._client("gencrl", "-u", self.url, home=self.registrar_home)
        if not crl.exists() or not crl.read_bytes().strip():
            raise CAError(f"{self.org.ca_name} produced no certificate revocation list at {crl}")
        return crl.read_bytes()

    def list_identities(self) -> list[dict[str, str]]:
        """Identities registered at this CA: name, type, max enrollments and role attribute."""
        out = self._client("identity", "list", "-u", self.url, home=self.acting_home)
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
        """Enroll into the site's identities folder (keys are generated here); returns its directory."""
        target = self.site.identity(spec.name)
        url = self._enroll_url(spec.name, secret or self.secret(spec.name))
        if not (target / "msp" / "signcerts" / "cert.pem").exists():  # one enrollment per secret
            msp = target / "msp"
            self._client("enroll", "-u", url, "-M", str(msp), "--csr.cn", spec.name, home=target)
            normalize_msp(msp, self.server_cert, self.tls_ca_cert)
        if spec.tls:
            self._enroll_tls(spec, url, target)
        return target

    def _enroll_tls(self, spec: IdentitySpec, url: str, target: Path) -> None:
        raw = target / "tls-enroll"
        hosts = ",".join(dict.fromkeys(spec.hosts))
        self._client("enroll", "-u", url, "-M", str(raw), "--enrollment.profile", "tls",
                     "--csr.cn", spec.name, "--csr.hosts", hosts, home=target, tls_ca=True)  # fmt: skip
        tls = target / "tls"
        tls.mkdir(parents=True, exist_ok=True)
        shutil.copy(raw / "signcerts" / "cert.pem", tls / "server.crt")
        shutil.copy(next((raw / "keystore").iterdir()), tls / "server.key")
        (tls / "server.key").chmod(0o600)
        shutil.copy(self.tls_ca_cert, tls / "ca.crt")
        shutil.rmtree(raw)

    def issue_registrar(self) -> None:
        """The API's own registrar (R12): it registers clients and admins with a `role`, revokes
        and publishes CRLs; no peers, orderers, registrars or intermediate CAs."""
        if (self.registrar_home / "msp" / "signcerts" / "cert.pem").exists():
            return
        spec = IdentitySpec(API_REGISTRAR, "client")
        self.register(spec, attrs=API_REGISTRAR_ATTRS)
        url = self._enroll_url(API_REGISTRAR, self.secret(API_REGISTRAR))
        self._client("enroll", "-u", url, home=self.registrar_home)

    def issue_operator(self) -> None:
        """The admin's operator certificate, the one certificate the operator CA issues (R1, R9)."""
        site = self.site
        if site.operator_key.exists():
            return
        args = ["register", "-u", self.url, "--id.name", OPERATOR, "--id.secret", self.secret(OPERATOR),
                "--id.type", "client", "--id.maxenrollments", "1"]  # fmt: skip
        try:
            self._client(*args, home=self.operator_registrar_home, caname=self.operator_ca_name)
        except CAError as exc:
            if exc.code != DUPLICATE_IDENTITY:
                raise
        raw = site.operator / "enroll"
        url = self._enroll_url(OPERATOR, self.secret(OPERATOR))
        self._client("enroll", "-u", url, "-M", str(raw), "--csr.cn", f"{OPERATOR}.{self.org.name}",
                     home=site.operator, caname=self.operator_ca_name)  # fmt: skip
        shutil.copy(raw / "signcerts" / "cert.pem", site.operator_cert)
        site.operator_key.touch(0o600)
        site.operator_key.write_bytes(next((raw / "keystore").iterdir()).read_bytes())
        shutil.rmtree(raw)

    def protect(self) -> None:
        """The CA's config (bootstrap secrets), database and keys: owner only (R3). Certificates
        keep their mode: they are copied into MSPs and bundles that others read."""
        for path in [self.home, *self.home.rglob("*")]:
            if path.is_symlink():
                continue
            if path.is_dir():
                path.chmod(0o700)
            elif not (path.suffix == ".pem" and b"PRIVATE KEY" not in path.read_bytes()):
                path.chmod(0o600)

    def write_org_msp(self) -> None:
        """The organization's public MSP, as the channel config carries it, and the CA bundle."""
        normalize_msp(self.site.msp, self.server_cert, self.tls_ca_cert)
        self.site.ca_cert.write_text(self.server_cert.read_text() + self.tls_ca_cert.read_text())

    def issue_all(self) -> None:
        self.protect()
        self.enroll_registrar()
        self.write_org_msp()
        self.issue_registrar()
        self.issue_operator()
        for spec in identity_specs(self.org):
            msp_done = (self.site.identity_msp(spec.name) / "signcerts" / "cert.pem").exists()
            if msp_done and (not spec.tls or (self.site.identity_tls(spec.name) / "server.key").exists()):
                continue  # issued by an earlier, interrupted run
            self.register(spec)
            self.enroll(spec)
        self.protect()


def normalize_msp(msp: Path, ca_cert: Path, tls_ca_cert: Path) -> None:
    """One CA file name in every MSP, so the NodeOU config can name it."""
    for sub, cert in (("cacerts", ca_cert), ("tlscacerts", tls_ca_cert)):
        d = msp / sub
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        shutil.copy(cert, d / "ca.pem")
    (msp / "config.yaml").write_text(NODE_OU_CONFIG)
