"""Member CAs' certificate revocation lists: parsed, signature-checked, and failing closed.

A revocation check that cannot read its list must refuse, not let everyone in: a list
that is missing or corrupt keeps the last good one in force (logged), and for a CA with
no good list ever, `RevocationUnknown` says so and the caller refuses its certificates."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

log = logging.getLogger("fabricml.crl")


class RevocationUnknown(Exception):
    """No trustworthy revocation list is known: every certificate it covers is refused."""


@dataclass(frozen=True)
class Revoked:
    """The lists of some CAs: which CAs (issuer names) and the serials each revoked."""

    issuers: frozenset[bytes] = frozenset()
    entries: frozenset[tuple[bytes, int]] = frozenset()  # (issuer, serial): serials are per issuer

    def is_revoked(self, cert: x509.Certificate) -> bool:
        """Whether its CA revoked it; RevocationUnknown when no list of its CA is known."""
        issuer = cert.issuer.public_bytes()
        if issuer not in self.issuers:
            raise RevocationUnknown(f"no usable revocation list of {cert.issuer.rfc4514_string()}")
        return (issuer, cert.serial_number) in self.entries

    def __or__(self, other: Revoked) -> Revoked:
        return Revoked(self.issuers | other.issuers, self.entries | other.entries)


def parse_crl(data: bytes, cas: Sequence[x509.Certificate]) -> Revoked:
    """One CRL (PEM or DER); ValueError unless a member CA of `cas` issued and signed it."""
    crl = x509.load_pem_x509_crl(data) if data.lstrip().startswith(b"-----") else x509.load_der_x509_crl(data)
    ca = next((c for c in cas if c.subject == crl.issuer), None)
    if ca is None:
        raise ValueError(f"the CRL's issuer {crl.issuer.rfc4514_string()} is not a member CA")
    if not crl.is_signature_valid(ca.public_key()):  # type: ignore[arg-type]
        raise ValueError(f"the CRL of {crl.issuer.rfc4514_string()} does not carry its CA's signature")
    issuer = crl.issuer.public_bytes()
    return Revoked(frozenset([issuer]), frozenset((issuer, entry.serial_number) for entry in crl))


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


@dataclass
class _CrlFile:
    path: Path
    ca: x509.Certificate  # the one CA whose list this file must hold
    seen: bytes | None = b"never read"  # the contents last parsed (compared, not stat'ed: a
    good: Revoked | None = None  # rewrite within one mtime tick and of the same size still counts)
    problem: str = "not read yet"

    def refresh(self) -> None:
        data = _read(self.path)
        if data == self.seen:
            return
        self.seen = data
        try:
            if data is None:
                raise FileNotFoundError(f"{self.path} does not exist")
            self.good, self.problem = parse_crl(data, [self.ca]), ""
            return
        except (OSError, ValueError) as exc:
            self.problem = f"{self.path}: {exc}"
        # e.g. between a CA's removal of its old list and the new one: the old one stays in force.
        kept = "the last good list stays in force" if self.good else "refusing every certificate it covers"
        log.error("revocation list unusable (%s); %s", self.problem, kept)


@dataclass
class RevocationFiles:
    """CRL files, one per CA (paths[i] holds the list of cas[i]), re-read when they change;
    each keeps its last good list (fail closed)."""

    paths: Sequence[Path]
    cas: Sequence[x509.Certificate]
    _files: list[_CrlFile] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.paths) != len(self.cas):
            raise ValueError(f"one revocation list per CA: {len(self.paths)} lists for {len(self.cas)} CAs")
        self._files = [_CrlFile(Path(p), ca) for p, ca in zip(self.paths, self.cas, strict=True)]

    def current(self) -> Revoked:
        """The union of every file's last good list."""
        revoked = Revoked()
        for f in self._files:
            f.refresh()
            if f.good is not None:
                revoked |= f.good
        return revoked

    def is_revoked(self, cert: x509.Certificate) -> bool:
        """Whether its CA's list names it; RevocationUnknown (saying why) when there is none."""
        try:
            return self.current().is_revoked(cert)
        except RevocationUnknown as exc:
            problems = "; ".join(f.problem for f in self._files if f.good is None)
            raise RevocationUnknown(f"{exc}{f' ({problems})' if problems else ''}") from None
