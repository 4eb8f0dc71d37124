"""`fabricml consortium create`: the founding site builds the channel's genesis block from
its own and the members' bundles, and proposes the first chaincode definition."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .bundle import SignedBundle
from .chaincode import check_version
from .channeltx import ChannelMember, ChannelSettings, Consenter, write_genesis_block
from .members import Members
from .site import Site, SiteError


@dataclass(frozen=True)
class Definition:
    """The chaincode definition the founder proposes; each member approves it on its own site."""

    chaincode: str = "fabricml"
    version: str = "1.0"
    sequence: int = 1

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, sort_keys=True) + "\n"

    @classmethod
    def load(cls, path: Path) -> Definition:
        try:
            raw: Any = json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError) as exc:
            raise SiteError(f"cannot read the chaincode definition {path}: {exc}") from None
        if not isinstance(raw, dict) or set(raw) != {"chaincode", "version", "sequence"}:
            raise SiteError(f"{path} must hold exactly chaincode, version and sequence")
        if type(raw["sequence"]) is not int or raw["sequence"] < 1:
            raise SiteError(f"{path}: sequence must be a positive integer")
        return cls(str(raw["chaincode"]), check_version(str(raw["version"])), raw["sequence"])


def channel_member(book: Members, signed: SignedBundle) -> ChannelMember:
    b = signed.bundle
    consenters = tuple(
        Consenter(
            b.msp_id,
            o.host,
            o.port,
            book.orderer_file(b.name, o.name, "tls.crt"),
            book.orderer_file(b.name, o.name, "identity.crt"),
        )
        for o in b.orderers
    )
    return ChannelMember(b.msp_id, book.msp_dir(b.name), consenters)


def create(
    founder: Site,
    member_bundles: list[Path],
    settings: ChannelSettings,
    definition: Definition,
    out: Path | None,
) -> tuple[Path, Path]:
    """Import the members' bundles, write the genesis block and the definition; returns both paths."""
    if not founder.initialized:
        raise SiteError(f"{founder.layout.root} is not an initialized site; run `fabricml site init` first")
    signed = [founder.members.get(founder.org.name)]
    for path in member_bundles:
        signed.append(founder.import_bundle(path))
    names = [s.bundle.name for s in signed]
    if len(set(names)) != len(names):
        raise SiteError(f"each member may be given once; got {names}")
    members = [channel_member(founder.members, s) for s in signed]
    block = founder.layout.outbox / f"{settings.channel}.block"
    with founder.step(
        f"genesis block of channel {settings.channel!r} with {len(members)} members ({settings.consensus})"
    ):
        write_genesis_block(founder.binaries, settings, members, founder.layout.channel, block)
    definition_file = founder.layout.outbox / "definition.json"
    definition_file.write_text(definition.to_json())
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(block, out / block.name)
        shutil.copy(definition_file, out / definition_file.name)
        return out / block.name, out / definition_file.name
    return block, definition_file
