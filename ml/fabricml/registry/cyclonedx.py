"""A CycloneDX 1.6 ML-BOM (machine-learning-model component with a model card)."""

from __future__ import annotations

import uuid
from typing import Any

NAMESPACE = uuid.UUID("0f7c3c9e-8a5e-4c1b-9a57-6d1f5b8f2a10")


def ml_bom(record: dict[str, Any], manifest: dict[str, Any] | None = None) -> dict[str, Any]:
    ref = f"{record['name']}@{record['version']}"
    datasets = [
        {
            "type": "data",
            "bom-ref": f"dataset:{d['name']}:{d['digest']}",
            "name": d["name"],
            "hashes": [{"alg": "SHA-256", "content": d["digest"]}],
            "properties": [
                {"name": "fabricml:rows", "value": str(d["rows"])},
                {"name": "fabricml:schemaDigest", "value": d["schemaDigest"]},
            ],
        }
        for d in record["datasets"]
    ]
    properties = [
        {"name": "fabricml:manifestDigest", "value": record["manifestDigest"]},
        {"name": "fabricml:status", "value": record["status"]},
        {"name": "fabricml:registeredBy", "value": record["registeredBy"]["mspId"]},
        {"name": "fabricml:registrationTx", "value": record["registeredBy"]["txId"]},
        {"name": "fabricml:approvals", "value": ",".join(a["mspId"] for a in record["approvals"])},
    ]
    if record.get("round"):
        properties.append({"name": "fabricml:federatedRound", "value": record["round"]})
    if record["code"]["commit"]:
        properties.append({"name": "fabricml:codeCommit", "value": record["code"]["commit"]})
    model_card: dict[str, Any] = {
        "modelParameters": {"datasets": [{"ref": d["bom-ref"]} for d in datasets]},
        "quantitativeAnalysis": {
            "performanceMetrics": [
                {"type": name, "value": str(value)}
                for name, value in sorted((record.get("metrics") or {}).items())
            ]
        },
    }
    if manifest and manifest.get("hyperparameters"):
        model_card["modelParameters"]["approach"] = {"type": "supervised"}
    model = {
        "type": "machine-learning-model",
        "bom-ref": ref,
        "name": record["name"],
        "version": record["version"],
        "hashes": [{"alg": "SHA-256", "content": record["weights"]["digest"]}],
        "externalReferences": [{"type": "distribution", "url": u} for u in record.get("storageUris", [])],
        "modelCard": model_card,
        "properties": properties,
    }
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": f"urn:uuid:{uuid.uuid5(NAMESPACE, record['manifestDigest'])}",
        "version": 1,
        "metadata": {
            "timestamp": record["registeredBy"]["at"],
            "component": {"type": "application", "name": "fabricml"},
        },
        "components": [model, *datasets],
        "dependencies": [{"ref": ref, "dependsOn": [*record["parents"], *(d["bom-ref"] for d in datasets)]}]
        + [{"ref": p} for p in record["parents"]],
    }
