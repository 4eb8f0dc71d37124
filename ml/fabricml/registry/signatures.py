"""Import an OpenSSF model-signing bundle and check it against the registered version."""

from __future__ import annotations

import base64
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import model_signing

from .service import ModelRegistry


@dataclass
class SignatureCheck:
    ref: str
    signed_root_digest: str
    registered_root_digest: str
    signature_valid: bool
    signature_error: str = ""
    file_problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.signature_valid
            and self.signed_root_digest == self.registered_root_digest
            and not self.file_problems
        )

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "ok": self.ok}


def statement(bundle: Path) -> dict[str, Any]:
    """The in-toto statement inside a model-signing (Sigstore) bundle."""
    raw = json.loads(Path(bundle).read_text())
    try:
        return dict(json.loads(base64.b64decode(raw["dsseEnvelope"]["payload"])))
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{bundle} is not a model-signing bundle: {exc}") from None


def check_bundle(registry: ModelRegistry, ref: str, bundle: Path, public_key: Path) -> SignatureCheck:
    """The bundle's signature over the registered files, and its digests against the ledger."""
    st = statement(bundle)
    subjects = st.get("subject") or []
    signed_root = subjects[0]["digest"]["sha256"] if len(subjects) == 1 else ""
    record = registry.get(ref)
    check = SignatureCheck(ref, signed_root, record.weights.digest, signature_valid=False)
    registered = {f.name: f.digest for f in registry.manifest(ref).weights.files}
    signed = {r["name"]: r["digest"] for r in (st.get("predicate") or {}).get("resources", [])}
    for name in sorted(registered.keys() | signed.keys()):
        if registered.get(name) != signed.get(name):
            check.file_problems.append(
                f"{name}: signed {signed.get(name, 'absent')[:16]}…, "
                f"registered {registered.get(name, 'absent')[:16]}…"
            )
    with tempfile.TemporaryDirectory() as tmp:
        # Verify over the registered bytes themselves, as fetched and checked from the stores.
        model_dir = registry.load(
            ref, Path(tmp) / Path(subjects[0]["name"] if subjects else "model"), require_deployable=False
        )
        try:
            config = model_signing.verifying.Config()
            config.use_elliptic_key_verifier(public_key=public_key).verify(model_dir, bundle)
            check.signature_valid = True
        except Exception as exc:  # model_signing raises ValueError and others for bad bundles
            check.signature_error = str(exc)
    return check
