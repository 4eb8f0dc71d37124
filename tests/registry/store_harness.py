"""A real artifact server process on its own, for tests and benchmarks that need no ledger:
three member orgs' CAs (org1 runs the store), their identities, an outsider's self-signed
certificate, and the server started, killed and restarted as a subprocess."""

from __future__ import annotations

import datetime
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fabricml.registry.artifact_client import ArtifactClient, Retry

ORGS = ("org1", "org2", "org3")
Key = ec.EllipticCurvePrivateKey


def _write(path: Path, cert: x509.Certificate, key: Key) -> tuple[Path, Path]:
    path.mkdir(parents=True, exist_ok=True)
    (path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path / "cert.pem", path / "key.pem"


def _issue(
    subject: str, key: Key, issuer: x509.Certificate | None, issuer_key: Key, *, ca: bool, ip: bool = False
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder().subject_name(name)
        .issuer_name(issuer.subject if issuer else name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    )  # fmt: skip
    if ca:
        usage = dict.fromkeys(("content_commitment", "key_encipherment", "data_encipherment"), False)
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, key_agreement=False,
                          encipher_only=False, decipher_only=False, **usage), critical=True,
        )  # fmt: skip
    if ip:
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        builder = builder.add_extension(san, critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass(frozen=True)
class Pki:
    root: Path

    def ca(self, org: str) -> Path:
        return self.root / org / "ca" / "cert.pem"

    def identity(self, org: str) -> tuple[Path, Path]:
        """(certificate, key) of a member identity of `org`, or of "outsider"."""
        return self.root / org / "user" / "cert.pem", self.root / org / "user" / "key.pem"

    @property
    def server(self) -> tuple[Path, Path]:
        return self.root / "org1" / "server" / "cert.pem", self.root / "org1" / "server" / "key.pem"

    def crl(self, org: str) -> Path:
        return self.root / org / "ca" / "crl.pem"

    def publish_crl(self, org: str, revoked: tuple[Path, ...] = ()) -> None:
        """org's CA signs a revocation list naming these certificates (none: an empty list)."""
        ca_key = serialization.load_pem_private_key((self.root / org / "ca" / "key.pem").read_bytes(), None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        ca = x509.load_pem_x509_certificate(self.ca(org).read_bytes())
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateRevocationListBuilder().issuer_name(ca.subject)
            .last_update(now).next_update(now + datetime.timedelta(days=1))
        )  # fmt: skip
        for path in revoked:
            serial = x509.load_pem_x509_certificate(path.read_bytes()).serial_number
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build()
            )
        crl = builder.sign(ca_key, hashes.SHA256())
        self.crl(org).write_bytes(crl.public_bytes(serialization.Encoding.PEM))

    @classmethod
    def make(cls, root: Path) -> Pki:
        for org in ORGS:
            ca_key = ec.generate_private_key(ec.SECP256R1())
            ca = _issue(f"ca.{org}", ca_key, None, ca_key, ca=True)
            _write(root / org / "ca", ca, ca_key)
            user_key = ec.generate_private_key(ec.SECP256R1())
            _write(root / org / "user", _issue(f"user1@{org}", user_key, ca, ca_key, ca=False), user_key)
            if org == "org1":
                server_key = ec.generate_private_key(ec.SECP256R1())
                server = _issue("artifacts.org1", server_key, ca, ca_key, ca=False, ip=True)
                _write(root / org / "server", server, server_key)
        outsider_key = ec.generate_private_key(ec.SECP256R1())
        _write(
            root / "outsider" / "user",
            _issue("outsider", outsider_key, None, outsider_key, ca=False),
            outsider_key,
        )
        pki = cls(root)
        for org in ORGS:
            pki.publish_crl(org)
        return pki

    def through_intermediate(self, org: str) -> tuple[Path, Path]:
        """(chain, key) of an identity issued by an intermediate CA that `org`'s CA made: a way
        for one org to look like many, if certificates were grouped by their issuer's name."""
        ca_key = serialization.load_pem_private_key((self.root / org / "ca" / "key.pem").read_bytes(), None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        ca = x509.load_pem_x509_certificate(self.ca(org).read_bytes())
        sub_key = ec.generate_private_key(ec.SECP256R1())
        sub = _issue(f"ca.{org}-sub", sub_key, ca, ca_key, ca=True)
        user_key = ec.generate_private_key(ec.SECP256R1())
        user = _issue(f"sybil@{org}", user_key, sub, sub_key, ca=False)
        cert, key = _write(self.root / org / "sub-user", user, user_key)
        cert.write_bytes(cert.read_bytes() + sub.public_bytes(serialization.Encoding.PEM))
        return cert, key

    def client(
        self, port: int, org: str, timeout: float = 30.0, retry: Retry | None = None
    ) -> ArtifactClient:
        cas = [self.ca(o) for o in ORGS]
        return ArtifactClient(
            f"https://127.0.0.1:{port}", cas, *self.identity(org), timeout=timeout, retry=retry
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class StoreProcess:
    """org1's artifact server, run as `python -m fabricml.registry.artifact_server`."""

    def __init__(self, pki: Pki, store: Path, port: int, log: Path) -> None:
        self.pki, self.store, self.port, self.log = pki, store, port, log
        self.proc: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:
        cert, key = self.pki.server
        argv = [sys.executable, "-m", "fabricml.registry.artifact_server", "--root", str(self.store),
                "--port", str(self.port), "--cert", str(cert), "--key", str(key),
                "--own-ca", str(self.pki.ca("org1"))]  # fmt: skip
        for org in ORGS:
            argv += ["--member-ca", str(self.pki.ca(org)), "--crl", str(self.pki.crl(org))]
        return argv

    def start(self, ready_within: float = 30.0) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + ready_within
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"artifact server exited with {self.proc.returncode}: see {self.log}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"artifact server did not listen on {self.port} within {ready_within} s")

    def kill(self) -> None:
        """SIGKILL: no chance to finish what it is sending."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def peak_rss(self) -> int:
        """The server process's peak resident memory so far, in bytes (Linux)."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) << 10
        raise RuntimeError("no VmHWM in /proc status")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None
