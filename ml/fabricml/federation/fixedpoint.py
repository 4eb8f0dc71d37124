"""Fixed-point encoding of model updates, so every organization aggregates to the same bytes.

A float value x becomes round(x * 2**SCALE_BITS) in int64, after clipping x to
[-CLIP, CLIP]. With CLIP = 2**8 every encoded value fits in 33 bits, so a sum of up
to 2**30 weighted values (weights up to 2**30 in total) cannot overflow int64:
|q| * W < 2**32 * 2**30 < 2**63. Integer sums, sorts and medians are exact, so the
result does not depend on the CPU, the GPU, the thread count or the order of work.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

SCALE_BITS = 24
CLIP = 2.0**8
BOUND = int(CLIP) << SCALE_BITS  # no honestly encoded value exceeds this magnitude
MAX_TOTAL_WEIGHT = 2**30

Update = list[np.ndarray]  # one array per model tensor


ENCODE_CHUNK = 1 << 16  # values encoded at once: the float64 intermediate stays in the cache


def encode(update: Sequence[np.ndarray]) -> Update:
    """Float arrays to fixed-point int64 arrays (round half to even, after clipping), a
    chunk at a time in place: the same values as rint(clip(x) * 2**SCALE_BITS), without
    five whole float64 temporaries (0.7 s for an 11 M-parameter update)."""
    out = []
    for a in update:
        src = np.asarray(a)
        q = np.empty(src.shape, dtype=np.int64)
        flat, qf = src.reshape(-1), q.reshape(-1)
        for i in range(0, qf.size, ENCODE_CHUNK):
            x = flat[i : i + ENCODE_CHUNK].astype(np.float64)
            if not np.isfinite(x).all():
                raise ValueError("updates must be finite: NaN or infinity found")
            np.clip(x, -CLIP, CLIP, out=x)
            x *= 1 << SCALE_BITS  # a power of two: exact
            np.rint(x, out=x)
            qf[i : i + ENCODE_CHUNK] = x  # integral float64 to int64: exact, as astype
        out.append(q)
    return out


def bound_violation(update: Sequence[np.ndarray]) -> str | None:
    """Why an update is outside what `encode` can produce (a provable violation), or None."""
    for i, a in enumerate(update):
        if a.dtype != np.int64:
            return f"tensor {i} is {a.dtype}, not int64"
        # max and min, not abs: abs(-2**63) wraps to a negative number.
        why = beyond_bound(i, int(a.max()), int(a.min())) if a.size else None
        if why:
            return why
    return None


def beyond_bound(tensor: int, high: int, low: int) -> str | None:
    """bound_violation's reason for a tensor whose largest and smallest values these are."""
    if high <= BOUND and low >= -BOUND:
        return None
    worst = max(high, -low)
    return f"tensor {tensor} holds a value of magnitude {worst}, beyond the bound {BOUND} (±{CLIP:g} encoded)"


def decode(update: Sequence[np.ndarray]) -> list[np.ndarray]:
    return [np.asarray(q, dtype=np.int64).astype(np.float64) / (1 << SCALE_BITS) for q in update]


def to_bytes(update: Sequence[np.ndarray], context: dict[str, Any] | None = None) -> bytes:
    """A canonical serialization: a JSON header of shapes (and of the context, e.g. task,
    round and participant, which binds the bytes to who committed them), then
    little-endian int64 data."""
    arrays = [np.ascontiguousarray(np.asarray(q, dtype="<i8")) for q in update]
    return header_bytes([a.shape for a in arrays], context) + b"".join(a.tobytes() for a in arrays)


def header_bytes(shapes: Sequence[Sequence[int]], context: dict[str, Any] | None = None) -> bytes:
    """The bytes before the values in to_bytes: length, then the JSON header (so a digest
    can be computed over values that stream past, fabricml.federation.chunked)."""
    head: dict[str, Any] = {
        "format": "fabricml.fixedpoint/v1",
        "scaleBits": SCALE_BITS,
        "shapes": [[int(d) for d in s] for s in shapes],
    }
    if context:
        head["context"] = context
    header = json.dumps(head, separators=(",", ":"), sort_keys=True)
    return len(header).to_bytes(4, "little") + header.encode()


def header(raw: bytes) -> dict[str, Any]:
    if len(raw) < 4:
        raise ValueError("update bytes are too short to hold a header")
    n = int.from_bytes(raw[:4], "little")
    try:
        head: dict[str, Any] = json.loads(raw[4 : 4 + n])
    except (ValueError, UnicodeDecodeError):
        raise ValueError("update header is not JSON") from None
    if head.get("format") != "fabricml.fixedpoint/v1" or head.get("scaleBits") != SCALE_BITS:
        raise ValueError(f"not a fabricml fixed-point update with scale 2**{SCALE_BITS}")
    return head


def from_bytes(raw: bytes) -> Update:
    head = header(raw)
    n = int.from_bytes(raw[:4], "little")
    out, offset = [], 4 + n
    if not isinstance(head.get("shapes"), list):
        raise ValueError("update header lists no shapes")
    for shape in head["shapes"]:
        count = int(np.prod(shape)) if shape else 1
        if offset + 8 * count > len(raw):
            raise ValueError("update bytes are shorter than their header says")
        a = np.frombuffer(raw, dtype="<i8", count=count, offset=offset).reshape(shape).astype(np.int64)
        out.append(a)
        offset += 8 * count
    if offset != len(raw):
        raise ValueError("update bytes do not match their header")
    return out


def digest(update: Sequence[np.ndarray]) -> str:
    """SHA-256 of the canonical bytes without context: the same values give the same digest.
    The values are hashed where they lie, not copied into one bytes object first."""
    arrays = [np.ascontiguousarray(np.asarray(q, dtype="<i8")) for q in update]
    h = hashlib.sha256(header_bytes([a.shape for a in arrays]))
    for a in arrays:
        h.update(a.reshape(-1).view(np.uint8).data)
    return h.hexdigest()
