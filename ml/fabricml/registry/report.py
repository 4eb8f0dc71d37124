"""An audit report a regulator can read: manifest, approvals, lineage, revocations, history."""

from __future__ import annotations

import base64
import datetime
import html
import json
import tempfile
from pathlib import Path
from typing import Any

from .lineage_view import render_png

STYLE = """
body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;width:100%;font-size:.9em}
td,th{border:1px solid #ddd;padding:4px 6px;text-align:left}
code,pre{font-family:ui-monospace,monospace;font-size:.85em}pre{background:#f6f6f6;padding:8px;overflow:auto}
.approved{color:#2e7d32}.revoked{color:#c62828}.registered{color:#f9a825}.deprecated{color:#757575}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body or '<tr><td colspan=99>none</td></tr>'}</table>"


def render(
    record: dict[str, Any],
    deployability: dict[str, Any],
    history: list[dict[str, Any]],
    lineage: dict[str, Any],
    manifest: dict[str, Any] | None,
) -> str:
    ref = f"{record['name']}@{record['version']}"
    with tempfile.TemporaryDirectory() as tmp:
        png = render_png(lineage, Path(tmp) / "lineage.png").read_bytes()
    by = record["registeredBy"]
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>Audit report: {_e(ref)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>Audit report: {_e(ref)}</h1>",
        f"<p>Generated {_e(datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds'))} from the "
        "consortium ledger. Every transaction ID below can be looked up on any member's peer.</p>",
        "<h2>Status</h2>",
        _table(
            ["status", "deployable", "approvals", "rule", "registered by", "registered at", "transaction"],
            [
                [
                    record["status"],
                    deployability["deployable"],
                    f"{deployability['approvals']} of {deployability['required']}",
                    deployability["rule"],
                    f"{by['subject']} ({by['mspId']})",
                    by["at"],
                    by["txId"],
                ]
            ],
        ),
        "<h2>Approvals</h2>",
        _table(
            ["organization", "approver", "time", "transaction"],
            [[a["mspId"], a["subject"], a["at"], a["txId"]] for a in record["approvals"]],
        ),
        "<h2>Revocation and deprecation</h2>",
        _table(
            ["change", "organization", "by", "reason", "time", "transaction"],
            [
                [kind, c["mspId"], c["subject"], c["reason"], c["at"], c["txId"]]
                for kind, c in (
                    ("revoked", record.get("revocation")),
                    ("deprecated", record.get("deprecation")),
                )
                if c
            ],
        ),
        "<h2>Provenance (on the ledger)</h2>",
        _table(
            ["field", "value"],
            [
                ["manifest digest (sha256)", record["manifestDigest"]],
                ["weights digest (sha256, OpenSSF model-signing root)", record["weights"]["digest"]],
                ["weights files", record["weights"]["files"]],
                [
                    "code",
                    f"{record['code']['repository']} @ {record['code']['commit']}"
                    + (" (uncommitted changes)" if record["code"]["dirty"] else ""),
                ],
                ["training organizations", ", ".join(record["trainingOrgs"])],
                ["parents", ", ".join(record["parents"]) or "none"],
                ["federated round", record.get("round") or "none"],
                ["metrics", json.dumps(record.get("metrics") or {}, sort_keys=True)],
                ["confidential fields (sha256 of private data)", record.get("confidentialDigest") or "none"],
            ],
        ),
        "<h2>Datasets</h2>",
        _table(
            ["name", "sha256", "rows", "schema sha256"],
            [[d["name"], d["digest"], d["rows"], d["schemaDigest"]] for d in record["datasets"]],
        ),
        "<h2>Lineage</h2>",
        f"<img alt='lineage graph of {_e(ref)}' src='data:image/png;base64,{base64.b64encode(png).decode()}'"
        " style='max-width:100%'>",
        "<h2>History of this record</h2>",
        _table(
            ["time", "transaction", "status after"],
            [[h["timestamp"], h["txId"], h["record"]["status"]] for h in history],
        ),
        "<h2>Manifest (off-chain, digest checked)</h2>",
        f"<pre>{_e(json.dumps(manifest, indent=2, sort_keys=True)) if manifest else 'not available'}</pre>",
        "</body></html>",
    ]
    return "\n".join(parts)
