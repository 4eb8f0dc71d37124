"""Connection profiles written by `fabricml network up`: peer addresses, TLS roots, identities."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from . import sync
from .identity import Identity, identity_from_msp
from .pkcs11 import TokenKey, pkcs11_signer
from .signing import Hash, Signer, signer_from_msp


@dataclass(frozen=True)
class PeerEndpoint:
    name: str
    address: str
    tls_root: bytes
    server_name: str

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(root_certificates=self.tls_root)

    def options(self) -> list[tuple[str, Any]]:
        return [("grpc.ssl_target_name_override", self.server_name)]

    def channel(self) -> grpc.aio.Channel:
        """A new asyncio TLS channel to this peer; the caller owns and closes it."""
        return grpc.aio.secure_channel(self.address, self.credentials(), options=self.options())

    def sync_channel(self) -> sync.Channel:
        """A new channel for the synchronous facade; the caller owns and closes it."""
        return sync.Channel(self.address, self.credentials(), self.options())


@dataclass(frozen=True)
class ConnectionProfile:
    path: Path
    raw: dict[str, Any]

    @classmethod
    def load(cls, path: Path) -> ConnectionProfile:
        try:
            raw = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ValueError(f"no connection profile at {path}; is the network up?") from None
        return cls(Path(path), raw)

    @property
    def organization(self) -> str:
        return str(self.raw["client"]["organization"])

    @property
    def msp_id(self) -> str:
        return str(self.raw["organizations"][self.organization]["mspid"])

    @property
    def channel_name(self) -> str:
        return str(self.raw["channel"])

    @property
    def chaincode_name(self) -> str:
        return str(self.raw["chaincode"])

    def identities(self) -> list[str]:
        """Bring-up identities plus any enrolled since."""
        names = set(self.raw["identities"])
        enrolled = Path(self.raw.get("identitiesDir", "/nonexistent"))
        if enrolled.is_dir():
            names |= {p.parent.parent.name for p in enrolled.glob("*/msp/signcerts")}

        return sorted(names)

    def peer(self, organization: str | None = None) -> PeerEndpoint:
        """The (first) peer of an organization, by default the profile's own."""
        org = organization or self.organization
        if org not in self.raw["organizations"]:
            raise ValueError(
                f"unknown organization {org!r}; known: {', '.join(sorted(self.raw['organizations']))}"
            )
        name = self.raw["organizations"][org]["peers"][0]
        peer = self.raw["peers"][name]
        return PeerEndpoint(
            name=name,
            address=peer["url"].removeprefix("grpcs://"),
            tls_root=Path(peer["tlsCACerts"]["path"]).read_bytes(),
            server_name=peer["grpcOptions"]["ssl-target-name-override"],
        )

    def identity(self, name: str) -> tuple[Identity, Signer, Hash]:
        """One of the org's identities (admin, user1, trainer, inference, auditor) with its signer."""
        entry = self.raw["identities"].get(name)
        enrolled = Path(self.raw.get("identitiesDir", "/nonexistent")) / name / "msp"
        token_file = enrolled.parent / "pkcs11.json"
        if entry is not None:
            msp, token = Path(entry["mspDir"]), entry.get("pkcs11")
        elif "/" not in name and (enrolled / "signcerts").is_dir():
            msp, token = enrolled, json.loads(token_file.read_text()) if token_file.is_file() else None
        else:
            known = ", ".join(self.identities())
            raise ValueError(f"no identity {name!r} for {self.organization}; known: {known}")
        # A `pkcs11` entry (or pkcs11.json beside msp/) means the key is in a token, not in keystore/.
        signer, hash = pkcs11_signer(TokenKey.from_profile(token)) if token else signer_from_msp(msp)
        return identity_from_msp(self.msp_id, msp), signer, hash
