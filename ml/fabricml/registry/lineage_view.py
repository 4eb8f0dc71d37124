"""Lineage as a terminal tree and as a picture (PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt
from rich.tree import Tree

STATUS_COLOURS = {
    "approved": "#2e7d32",
    "registered": "#f9a825",
    "revoked": "#c62828",
    "deprecated": "#757575",
}


def _label(v: dict[str, Any]) -> str:
    return f"{v['name']}@{v['version']}"


def tree(lineage: dict[str, Any]) -> Tree:
    """Root first; each version's parents, datasets and round beneath it."""
    versions = {_label(v): v for v in lineage["versions"]}
    parents: dict[str, list[str]] = {}
    for e in lineage["edges"]:
        parents.setdefault(e["child"], []).append(e["parent"])

    def add(node: Tree, ref: str, seen: frozenset[str]) -> None:
        v = versions[ref]
        approvals = ", ".join(a["mspId"] for a in v["approvals"]) or "none"
        colour = STATUS_COLOURS.get(v["status"], "white")
        branch = node.add(f"[bold]{ref}[/] [{colour}]{v['status']}[/] (approved by {approvals})")
        if v.get("round"):
            branch.add(f"federated round {v['round']}")
        for d in v["datasets"]:
            branch.add(f"dataset {d['name']} sha256:{d['digest'][:12]}… rows={d['rows']}")
        for p in parents.get(ref, []):
            if p in seen:
                branch.add(f"{p} (shown above)")
            else:
                add(branch, p, seen | {p})

    root = Tree(f"lineage of {lineage['root']}")
    add(root, lineage["root"], frozenset({lineage["root"]}))
    return root


def render_png(lineage: dict[str, Any], out: Path) -> Path:
    """Versions as boxes coloured by status, ancestors above, datasets beside them."""
    depth: dict[str, int] = {lineage["root"]: 0}
    changed = True
    while changed:
        changed = False
        for e in lineage["edges"]:
            d = depth.get(e["child"], 0) + 1
            if depth.get(e["parent"], -1) < d:
                depth[e["parent"]] = d
                changed = True
    layers: dict[int, list[str]] = {}
    for ref, d in sorted(depth.items(), key=lambda kv: (kv[1], kv[0])):
        layers.setdefault(d, []).append(ref)
    pos = {
        ref: (i - (len(refs) - 1) / 2, float(d)) for d, refs in layers.items() for i, ref in enumerate(refs)
    }
    versions = {_label(v): v for v in lineage["versions"]}
    width = max(len(refs) for refs in layers.values())
    fig, ax = plt.subplots(figsize=(max(6.0, 3.2 * width), max(3.0, 1.9 * len(layers))))
    for e in lineage["edges"]:
        (x1, y1), (x2, y2) = pos[e["child"]], pos[e["parent"]]
        ax.annotate(
            "", xy=(x2, y2 - 0.18), xytext=(x1, y1 + 0.18), arrowprops={"arrowstyle": "->", "color": "#555"}
        )
    for ref, (x, y) in pos.items():
        v = versions[ref]
        text = f"{ref}\n{v['status']} · {len(v['approvals'])} approval(s)"
        if v.get("round"):
            text += f"\nround {v['round']}"
        ax.text(
            x,
            y,
            text,
            ha="center",
            va="center",
            fontsize=9,
            color="white",
            bbox={"boxstyle": "round,pad=0.5", "fc": STATUS_COLOURS.get(v["status"], "#455a64")},
        )
        for j, d in enumerate(v["datasets"][:3]):
            ax.text(
                x + 0.42,
                y - 0.25 - 0.17 * j,
                f"▤ {d['name']} ({d['rows']} rows)",
                fontsize=7,
                color="#1565c0",
            )
    ax.set_xlim(-width / 2 - 0.6, width / 2 + 0.9)
    ax.set_ylim(-0.6, len(layers) - 0.4)
    ax.axis("off")
    ax.set_title(f"Lineage of {lineage['root']} (arrows point to parents)", fontsize=11)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
