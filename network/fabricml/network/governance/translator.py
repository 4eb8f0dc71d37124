"""Fabric's configtxlator: protobuf <-> JSON for config messages, and compute_update."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from ..binaries import Binaries, default_binaries


class TranslatorError(RuntimeError):
    """configtxlator refused its input; the message has its error output."""


class Translator:
    """Runs the pinned configtxlator binary on temporary files."""

    def __init__(self, binaries: Binaries | None = None) -> None:
        self.binary = (binaries or default_binaries()).path("configtxlator")

    def _run(self, *args: str) -> None:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        result = subprocess.run([str(self.binary), *args], capture_output=True, text=True, env=env)
        if result.returncode != 0:
            raise TranslatorError(f"configtxlator {args[0]} failed: {result.stderr.strip()[-800:]}")

    def decode(self, message: bytes, kind: str) -> Any:
        """The JSON form of a protobuf message such as common.Config or common.ConfigUpdate."""
        with tempfile.TemporaryDirectory(prefix="configtxlator-") as tmp:
            src, out = Path(tmp) / "in.pb", Path(tmp) / "out.json"
            src.write_bytes(message)
            self._run("proto_decode", "--input", str(src), "--type", kind, "--output", str(out))
            return json.loads(out.read_text())

    def encode(self, data: Any, kind: str) -> bytes:
        with tempfile.TemporaryDirectory(prefix="configtxlator-") as tmp:
            src, out = Path(tmp) / "in.json", Path(tmp) / "out.pb"
            src.write_text(json.dumps(data))
            self._run("proto_encode", "--input", str(src), "--type", kind, "--output", str(out))
            return out.read_bytes()

    def compute_update(self, channel: str, original: Any, updated: Any) -> bytes:
        """The ConfigUpdate bytes that turn config `original` into `updated` (both JSON)."""
        with tempfile.TemporaryDirectory(prefix="configtxlator-") as tmp:
            a, b, out = Path(tmp) / "original.pb", Path(tmp) / "updated.pb", Path(tmp) / "update.pb"
            a.write_bytes(self.encode(original, "common.Config"))
            b.write_bytes(self.encode(updated, "common.Config"))
            self._run(
                "compute_update", "--channel_id", channel,
                "--original", str(a), "--updated", str(b), "--output", str(out),
            )  # fmt: skip
            return out.read_bytes()
