"""The registry as an org uses it: the Registry contract plus the artifact stores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fabricml.gateway import sync

from .artifact_client import ArtifactClient
from .artifacts import ArtifactError, ArtifactStore
from .datasets import DatasetFingerprint
from .digests import canonical_json, sha256_bytes
from .manifest import ProvenanceManifest, build
from .weights import hash_model


class ModelVerificationError(RuntimeError):
    """Model bytes differ from what the ledger records, or the version may not be deployed."""


def blob_base(store_url: str) -> str:
    """The URL under which an artifact server serves blobs by sha256 (`<base><digest>`)."""
    return store_url.rstrip("/") + "/v1/blobs/"


class ModelRegistry:
    def __init__(
        self,
        contract: sync.Contract,
        store: ArtifactStore,
        remotes: list[ArtifactClient] | None = None,
        msp_id: str = "",
        public_url: str = "",
    ) -> None:
        self.contract = contract
        self.msp_id = msp_id  # the org this registry acts for
        self.store = store
        self.remotes = remotes or []
        # Where other members fetch this org's blobs; a local path would mean nothing to them.
        self.storage_uris = [blob_base(public_url)] if public_url else []

    # ---- transactions -------------------------------------------------------------

    def register(
        self,
        model_dir: Path,
        name: str,
        version: str,
        training_orgs: list[str],
        datasets: list[DatasetFingerprint] | None = None,
        hyperparameters: dict[str, Any] | None = None,
        metrics: dict[str, float] | None = None,
        parents: list[str] | None = None,
        round_ref: str = "",
        confidential: dict[str, Any] | None = None,
        code_dir: Path | None = None,
    ) -> dict[str, Any]:
        """Hash and store the model, then record it on the ledger; returns the record."""
        manifest = build(
            model_dir, name, version, training_orgs, datasets, hyperparameters, metrics, parents, round_ref,
            storage=self.storage_uris, code_dir=code_dir,
        )  # fmt: skip
        self.store.put_model(model_dir, manifest)
        request = manifest.registration()
        secret = canonical_json(confidential) if confidential else b""
        if secret:
            request["confidentialDigest"] = sha256_bytes(secret)
        record = dict(
            json.loads(self.contract.submit_transaction("Register", json.dumps(request, sort_keys=True)))
        )
        if secret:
            # Endorsed by our org alone: the plaintext never reaches another org's peer.
            self.contract.submit_transaction(
                "PutConfidential", manifest.ref, transient={"confidential": secret},
                endorsing_organizations=[self.msp_id],
            )  # fmt: skip
        return record

    def _submit(self, function: str, *args: str) -> dict[str, Any]:
        return dict(json.loads(self.contract.submit_transaction(function, *args)))

    def approve(self, ref: str) -> dict[str, Any]:
        return self._submit("Approve", ref)

    def revoke(self, ref: str, reason: str) -> dict[str, Any]:
        return self._submit("Revoke", ref, reason)

    def deprecate(self, ref: str, reason: str) -> dict[str, Any]:
        return self._submit("Deprecate", ref, reason)

    def vote_policy(self, name: str, rule: str) -> dict[str, Any]:
        return self._submit("VoteDeploymentPolicy", name, rule)

    # ---- queries ------------------------------------------------------------------

    def _evaluate(self, function: str, *args: str) -> Any:
        return json.loads(self.contract.evaluate_transaction(function, *args))

    def get(self, ref: str) -> dict[str, Any]:
        return dict(self._evaluate("Get", ref))

    def deployable(self, ref: str) -> dict[str, Any]:
        return dict(self._evaluate("Deployable", ref))

    def list_versions(self, name: str = "", page_size: int = 50, bookmark: str = "") -> dict[str, Any]:
        return dict(self._evaluate("List", name, str(page_size), bookmark))

    def history(self, ref: str) -> list[dict[str, Any]]:
        return list(self._evaluate("History", ref))

    def lineage(self, ref: str) -> dict[str, Any]:
        return dict(self._evaluate("Lineage", ref))

    def confidential(self, ref: str) -> dict[str, Any]:
        """Confidential provenance, readable only through the registering org's peer."""
        return dict(json.loads(self.contract.evaluate_transaction("GetConfidential", ref)))

    def policy(self, name: str) -> dict[str, Any]:

        return dict(self._evaluate("GetDeploymentPolicy", name))

    # ---- artifacts and verification ------------------------------------------------

    def blob(self, digest: str) -> bytes:
        """A blob from the local store, else from a member's store (then kept locally)."""
        if self.store.has(digest):
            return self.store.get(digest)
        errors = []
        for remote in self.remotes:
            try:
                data = remote.get(digest)
            except (ArtifactError, OSError) as exc:
                errors.append(str(exc))
                continue
            self.store.put_bytes(data)
            return data
        raise ArtifactError(
            f"blob {digest} is in no reachable artifact store" + "".join(f"\n  {e}" for e in errors)
        )

    def manifest(self, ref: str) -> ProvenanceManifest:
        record = self.get(ref)
        manifest = ProvenanceManifest.from_bytes(self.blob(record["manifestDigest"]))
        if manifest.weights.digest != record["weights"]["digest"] or manifest.ref != ref:
            raise ModelVerificationError(f"the manifest stored for {ref} does not match its ledger record")
        return manifest

    def verify_dir(self, ref: str, model_dir: Path) -> list[str]:
        """Differences between a model directory and the registered version, file by file."""
        record = self.get(ref)
        local = hash_model(model_dir)
        if local.digest == record["weights"]["digest"]:
            return []
        return self.manifest(ref).weights.compare(local) or [
            f"weights digest {local.digest} differs from registered {record['weights']['digest']}"
        ]

    def load(self, ref: str, dest: Path, require_deployable: bool = True) -> Path:
        """Fetch a version's files into dest, each checked against the ledger; refuse a
        version that is not approved (or is revoked) when it is to be deployed."""
        if require_deployable:
            d = self.deployable(ref)
            if not d["deployable"]:
                raise ModelVerificationError(
                    f"{ref} may not be deployed: status {d['status']}, {d['approvals']} of {d['required']} "
                    f"approvals ({d['rule']})"
                )
        manifest = self.manifest(ref)
        dest.mkdir(parents=True, exist_ok=True)
        for f in manifest.weights.files:
            target = dest / f.name
            if not target.resolve().is_relative_to(dest.resolve()):
                raise ModelVerificationError(f"manifest file name {f.name!r} escapes the model directory")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.blob(f.digest))
        # The manifest was already matched to the ledger record: compare against it directly.
        problems = manifest.weights.compare(hash_model(dest))

        if problems:
            raise ModelVerificationError(f"{ref} does not match the ledger: " + "; ".join(problems))
        return dest
