"""SHA-256 helpers and canonical JSON, shared by everything that is hashed."""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

DIGEST = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def check_digest(value: str, what: str = "digest") -> str:
    if not isinstance(value, str) or not DIGEST.match(value):
        raise ValueError(f"{what} must be 64 lowercase hex characters (SHA-256), got {value!r}")
    return value


def _reject_non_finite(value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"canonical JSON cannot hold {value}")
    if isinstance(value, dict):
        for v in value.values():
            _reject_non_finite(v)
    elif isinstance(value, list | tuple):
        for v in value:
            _reject_non_finite(v)


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the same document always gives the same bytes."""
    _reject_non_finite(value)
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()
