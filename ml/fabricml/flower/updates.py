"""A Flower client's update as fabricml commits it: the exact fixed-point difference between
the weights it sends and the global model it received, in the wire format, bound to task,
round and participant. Every org that holds the same arrays computes the same bytes."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fabricml.federation import fixedpoint, wire
from fabricml.federation.fixedpoint import Update


class UnusableUpdate(ValueError):
    """Bytes that do not hold an update of this round by this participant (says why)."""


def global_of(arrays: Sequence[np.ndarray]) -> Update:
    """The fixed-point model of float arrays (a global model travels as float32, which
    encodes back exactly: fabricml.federation.training.next_global)."""
    return fixedpoint.encode(arrays)


def global_digest(arrays: Sequence[np.ndarray]) -> str:
    """The digest the orgs post for a global model (fixedpoint.digest)."""
    return fixedpoint.digest(global_of(arrays))


def update_of(trained: Sequence[np.ndarray], global_fp: Update) -> Update:
    """encode(trained) - global, in exact integers; shapes must be the global model's."""
    if [np.shape(t) for t in trained] != [g.shape for g in global_fp]:
        raise UnusableUpdate(
            f"the trained arrays' shapes {[np.shape(t) for t in trained]} are not the global "
            f"model's {[g.shape for g in global_fp]}"
        )
    return [q - g for q, g in zip(fixedpoint.encode(trained), global_fp, strict=True)]


def binding(
    task: str, round_: int, participant: str, dataset: Mapping[str, Any] | None = None, nonce: str = ""
) -> dict[str, Any]:
    """The header context that binds update bytes to their author (a fresh nonce unless given)."""
    context: dict[str, Any] = {
        "task": task,
        "round": round_,
        "participant": participant,
        "nonce": nonce or secrets.token_hex(16),
    }
    if dataset:
        context["dataset"] = dict(dataset)
    return context


def update_bytes(update: Update, context: Mapping[str, Any]) -> bytes:
    return wire.to_bytes(update, dict(context))


def digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def read_update(
    raw: bytes, task: str, round_: int, participant: str, shapes: Sequence[tuple[int, ...]]
) -> tuple[Update, dict[str, Any]]:
    """(values, header context) of committed bytes, refused unless bound to this task, round
    and participant and shaped like the model."""
    try:
        head, update = wire.decode_any(raw)
    except ValueError as exc:
        raise UnusableUpdate(f"its bytes are not an update: {exc}") from None
    context = head.get("context", {})
    expected = {"task": task, "round": round_, "participant": participant}
    if not isinstance(context, dict) or {k: context.get(k) for k in expected} != expected:
        raise UnusableUpdate(f"its bytes are bound to {context}, not to {expected}")
    if [tuple(a.shape) for a in update] != [tuple(s) for s in shapes]:
        raise UnusableUpdate(f"its shapes {[a.shape for a in update]} are not the model's {list(shapes)}")
    return update, context
