"""Member CAs' certificate revocation lists: parsed, signature-checked, and failing closed.

A revocation check that cannot read its list must refuse, not let everyone in: a list
that is missing or corrupt keeps the last good one in force (logged), and where there
never was a good one, `RevocationUnknown` says so and the caller refuses."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

log = logging.getLogger("fabricml.crl")


class RevocationUnknown(Exception):
    """No trustworthy revocation list is known: every certificate it covers is refused."""


@dataclass(frozen=True)
class Revoked:
    """(issuer name, serial number) of every revoked certificate: serials are unique per issuer."""

    entries: frozenset[tuple[bytes, int]] = frozenset()

    def covers(self, cert: x509.Certificate) -> bool:
        return (cert.issuer.public_bytes(), cert.serial_number) in self.entries

    def __or__(self, other: Revoked) -> Revoked:
        return Revoked(self.entries | other.entries)


def parse_crl(data: bytes, cas: Sequence[x509.Certificate]) -> Revoked:
    """One CRL (PEM or DER); ValueError unless a member CA of `cas` issued and signed it."""
    crl = x509.load_pem_x509_crl(data) if data.lstrip().startswith(b"-----") else x509.load_der_x509_crl(data)
    ca = next((c for c in cas if c.subject == crl.issuer), None)
    if ca is None:
        raise ValueError(f"the CRL's issuer {crl.issuer.rfc4514_string()} is not a member CA")
    if not crl.is_signature_valid(ca.public_key()):  # type: ignore[arg-type]
        raise ValueError(f"the CRL of {crl.issuer.rfc4514_string()} does not carry its CA's signature")
    issuer = crl.issuer.public_bytes()
    return Revoked(frozenset((issuer, entry.serial_number) for entry in crl))


def parse_crls(items: Iterable[bytes], cas: Sequence[x509.Certificate]) -> Revoked:
    revoked = Revoked()
    for data in items:
        revoked |= parse_crl(data, cas)
    return revoked


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


@dataclass
class _CrlFile:
    path: Path
    stamp: tuple[int, int, int] | None = (-1, -1, -1)  # never read
    good: Revoked | None = None
    problem: str = "not read yet"

    def refresh(self, cas: Sequence[x509.Certificate]) -> None:
        stamp = _stamp(self.path)
        if stamp == self.stamp:
            return
        self.stamp = stamp
        try:
            if stamp is None:
                raise FileNotFoundError(f"{self.path} does not exist")
            self.good, self.problem = parse_crl(self.path.read_bytes(), cas), ""
            return
        except (OSError, ValueError) as exc:
            self.problem = f"{self.path}: {exc}"
        # e.g. between a CA's removal of its old list and the new one: the old one stays in force.
        kept = "the last good list stays in force" if self.good else "refusing every certificate it covers"
        log.error("revocation list unusable (%s); %s", self.problem, kept)


@dataclass
class RevocationFiles:
    """CRL files, re-read when they change; each keeps its last good list (fail closed)."""

    paths: Sequence[Path]
    cas: Sequence[x509.Certificate]
    _files: list[_CrlFile] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._files = [_CrlFile(Path(p)) for p in self.paths]

    def current(self) -> Revoked:
        """The union of every file's last good list; RevocationUnknown if one never had one."""
        revoked = Revoked()
        for f in self._files:
            f.refresh(self.cas)
            if f.good is None:
                raise RevocationUnknown(f"no usable certificate revocation list: {f.problem}")
            revoked |= f.good
        return revoked
