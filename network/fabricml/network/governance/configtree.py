"""A channel config as Fabric's orderer sees it: elements by path, and what an update does.

`apply` mirrors the orderer's configtx validator (verifyReadSet, computeDeltaSet,
computeUpdateResult), so a signer can see the exact effect of an update on its own
copy of the current config before it signs."""

from __future__ import annotations

from dataclasses import dataclass, field

from fabric_protos.common import configtx_pb2

GROUP, VALUE, POLICY = "group", "value", "policy"
ROOT = "/Channel"


class StaleUpdateError(ValueError):
    """The update was computed against another config version; the orderer would refuse it."""


@dataclass(frozen=True)
class Element:
    kind: str
    path: str
    version: int
    message: configtx_pb2.ConfigGroup | configtx_pb2.ConfigValue | configtx_pb2.ConfigPolicy

    @property
    def key(self) -> str:
        return f"{self.kind} {self.path}"


def flatten(root: configtx_pb2.ConfigGroup) -> dict[str, Element]:
    """Every group, value and policy under root, keyed "kind path"."""
    out: dict[str, Element] = {}
    _walk(out, ROOT, root)
    return out


def _walk(out: dict[str, Element], path: str, group: configtx_pb2.ConfigGroup) -> None:
    out[f"{GROUP} {path}"] = Element(GROUP, path, group.version, group)
    for name, child in group.groups.items():
        _walk(out, f"{path}/{name}", child)
    for name, value in group.values.items():
        out[f"{VALUE} {path}/{name}"] = Element(VALUE, f"{path}/{name}", value.version, value)
    for name, policy in group.policies.items():
        out[f"{POLICY} {path}/{name}"] = Element(POLICY, f"{path}/{name}", policy.version, policy)


@dataclass
class Effect:
    """What applying an update to a config changes, as sorted element keys."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    before: dict[str, Element] = field(default_factory=dict)
    after: dict[str, Element] = field(default_factory=dict)

    def lines(self) -> list[str]:
        return (
            [f"add {k}" for k in self.added]
            + [f"remove {k}" for k in self.removed]
            + [f"modify {k}" for k in self.modified]
        )


def apply(config: configtx_pb2.Config, update: configtx_pb2.ConfigUpdate) -> Effect:
    """The effect of `update` on `config`, or StaleUpdateError if its read set is out of date."""
    current = flatten(config.channel_group)
    read = flatten(update.read_set) if update.HasField("read_set") else {}
    write = flatten(update.write_set)
    for key, element in read.items():
        if key not in current:
            raise StaleUpdateError(f"the update reads {key}, which the current config does not have")
        if current[key].version != element.version:
            raise StaleUpdateError(
                f"the update needs {key} at version {element.version}; it is at {current[key].version}"
            )
    delta = {k: e for k, e in write.items() if not (k in read and read[k].version == e.version)}
    overlay = {**current, **delta}
    after: dict[str, Element] = {}
    _reachable(overlay, ROOT, after)
    effect = Effect(before=current, after=after)
    effect.added = sorted(k for k in after if k not in current)
    effect.removed = sorted(k for k in current if k not in after)
    effect.modified = sorted(k for k in after if k in current and after[k].version != current[k].version)
    return effect


def _reachable(overlay: dict[str, Element], path: str, out: dict[str, Element]) -> None:
    """Rebuild the config from the root through each group's listed members."""
    group = overlay[f"{GROUP} {path}"]
    out[group.key] = group
    message = group.message
    assert isinstance(message, configtx_pb2.ConfigGroup)
    for name in message.groups:
        _reachable(overlay, f"{path}/{name}", out)
    for kind, names in ((VALUE, message.values), (POLICY, message.policies)):
        for name in names:
            key = f"{kind} {path}/{name}"
            out[key] = overlay[key]
