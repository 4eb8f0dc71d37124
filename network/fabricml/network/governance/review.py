"""A signer's review: does the update, applied to my own copy of the current config,
do exactly what the proposal's kind and subject say?

The chaincode checks what it can from the update alone; only a signer holding the
current config sees what an update removes or which consenters it replaces."""

from __future__ import annotations

from dataclasses import dataclass

from fabric_protos.common import configtx_pb2
from fabric_protos.orderer import configuration_pb2
from fabric_protos.orderer.etcdraft import configuration_pb2 as etcdraft_pb2

from .configtree import GROUP, VALUE, Effect, apply

APPLICATION, ORDERER = "/Channel/Application", "/Channel/Orderer"
CONSENSUS_TYPE = f"{VALUE} {ORDERER}/ConsensusType"


class ReviewError(ValueError):
    """The update does not do what its proposal says; the message lists what it does."""


@dataclass(frozen=True)
class Review:
    """What the update does to the current config, once it passed the checks."""

    lines: list[str]
    consenters_before: list[str]
    consenters_after: list[str]


def review(kind: str, subject: str, config: configtx_pb2.Config, update: configtx_pb2.ConfigUpdate) -> Review:
    """Refuse (ReviewError) unless the update's effect is exactly the proposal's kind and subject."""
    effect = apply(config, update)
    before = _consenters(effect, before=True)
    after = _consenters(effect, before=False)
    checks = {
        "add-org": _check_add_org,
        "remove-org": _check_remove_org,
        "policy": _check_policy,
        "consenter-add": _check_consenters,
        "consenter-remove": _check_consenters,
    }
    if kind not in checks:
        raise ReviewError(f"unknown proposal kind {kind!r}")
    problem = checks[kind](kind, subject, effect, before, after)
    if problem:
        raise ReviewError(f"{problem}; the update would: {'; '.join(effect.lines()) or 'change nothing'}")
    return Review(effect.lines(), before, after)


def _org_subtree(effect_keys: list[str], subject: str) -> tuple[set[str], list[str]]:
    """Keys inside the org's groups (under Application or Orderer), and every other key."""
    roots = (f"{APPLICATION}/{subject}", f"{ORDERER}/{subject}")
    inside, outside = set(), []
    for key in effect_keys:
        path = key.split(" ", 1)[1]
        if any(path == r or path.startswith(r + "/") for r in roots):
            inside.add(path if key.startswith(GROUP) and path in roots else key)
        else:
            outside.append(key)
    return inside, outside


def _check_add_org(kind: str, subject: str, effect: Effect, before: list[str], after: list[str]) -> str:
    inside, outside = _org_subtree(effect.added, subject)
    if f"{APPLICATION}/{subject}" not in inside:
        return f"it does not add {subject} to {APPLICATION}"
    if effect.removed:
        return "it also removes config elements"
    if set(outside) or set(effect.modified) - {f"{GROUP} {APPLICATION}", f"{GROUP} {ORDERER}"}:
        return f"it changes more than adding {subject}"
    return ""


def _check_remove_org(kind: str, subject: str, effect: Effect, before: list[str], after: list[str]) -> str:
    inside, outside = _org_subtree(effect.removed, subject)
    if f"{APPLICATION}/{subject}" not in inside:
        return f"it does not remove {subject} from {APPLICATION}"
    if effect.added or outside or set(effect.modified) - {f"{GROUP} {APPLICATION}", f"{GROUP} {ORDERER}"}:
        return f"it changes more than removing {subject}"
    return ""


def _check_policy(kind: str, subject: str, effect: Effect, before: list[str], after: list[str]) -> str:
    if effect.added or effect.removed:
        return "a policy proposal may not add or remove elements"
    if [k.split(" ", 1)[1] for k in effect.modified] != [subject]:
        return f"it must modify {subject} and nothing else"
    if effect.modified[0] == CONSENSUS_TYPE:
        return "the consenter set changes through consenter-add or consenter-remove"
    return ""


def _check_consenters(kind: str, subject: str, effect: Effect, before: list[str], after: list[str]) -> str:
    if effect.added or effect.removed or effect.modified != [CONSENSUS_TYPE]:
        return "a consenter proposal modifies ConsensusType and nothing else"
    expected = sorted({*before, subject}) if kind == "consenter-add" else sorted(set(before) - {subject})
    if sorted(after) != expected or len(after) != len(set(after)):
        went = f"[{', '.join(before)}] to [{', '.join(after)}]"
        return f"the consenters would go from {went}, not to [{', '.join(expected)}]"
    if after == before:
        return f"{subject} is {'already' if kind == 'consenter-add' else 'not'} a consenter"
    if not _same_raft_settings(effect):
        return "it also changes the consensus type, state or Raft options"
    return ""


def _consensus(effect: Effect, before: bool) -> configuration_pb2.ConsensusType | None:
    elements = effect.before if before else effect.after
    found = elements.get(CONSENSUS_TYPE)
    if found is None:
        return None
    assert isinstance(found.message, configtx_pb2.ConfigValue)
    return configuration_pb2.ConsensusType.FromString(found.message.value)


def _raft(ct: configuration_pb2.ConsensusType | None) -> etcdraft_pb2.ConfigMetadata | None:
    if ct is None or ct.type != "etcdraft":
        return None
    return etcdraft_pb2.ConfigMetadata.FromString(ct.metadata)


def _consenters(effect: Effect, before: bool) -> list[str]:
    meta = _raft(_consensus(effect, before))
    return [] if meta is None else [f"{c.host}:{c.port}" for c in meta.consenters]


def _same_raft_settings(effect: Effect) -> bool:
    old, new = _consensus(effect, True), _consensus(effect, False)
    if old is None or new is None or old.type != new.type or old.state != new.state:
        return False
    old_meta, new_meta = _raft(old), _raft(new)
    return old_meta is not None and new_meta is not None and old_meta.options == new_meta.options
