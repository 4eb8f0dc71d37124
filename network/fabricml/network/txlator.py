"""Fabric's configtxlator: protobuf blocks and config updates to JSON and back."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from .binaries import Binaries


class TranslateError(RuntimeError):
    """configtxlator could not decode or encode; the message has its output."""


def _run(binaries: Binaries, *args: str) -> None:
    argv = [str(binaries.path("configtxlator")), *args]
    result = subprocess.run(argv, capture_output=True, text=True, env={"PATH": os.environ.get("PATH", "")})
    if result.returncode != 0:
        raise TranslateError(f"configtxlator {args[0]} failed: {result.stderr.strip()[-500:]}")


def decode(binaries: Binaries, path: Path, kind: str) -> Any:
    """A protobuf file (e.g. kind common.Block) as JSON."""
    with tempfile.TemporaryDirectory(prefix="txlator-") as tmp:
        out = Path(tmp) / "decoded.json"
        _run(binaries, "proto_decode", "--input", str(path), "--type", kind, "--output", str(out))
        return json.loads(out.read_text())


def encode(binaries: Binaries, data: Any, kind: str, out: Path) -> Path:
    src = out.with_suffix(".json")
    src.write_text(json.dumps(data))
    _run(binaries, "proto_encode", "--input", str(src), "--type", kind, "--output", str(out))
    return out


def compute_update(binaries: Binaries, channel: str, original: Path, updated: Path, out: Path) -> Path:
    _run(binaries, "compute_update", "--channel_id", channel, "--original", str(original),
         "--updated", str(updated), "--output", str(out))  # fmt: skip
    return out


def block_config(block: Any) -> dict[str, Any]:
    """The channel config inside a decoded config block."""
    return dict(block["data"]["data"][0]["payload"]["data"]["config"])


def block_channel(block: Any) -> str:
    return str(block["data"]["data"][0]["payload"]["header"]["channel_header"]["channel_id"])
