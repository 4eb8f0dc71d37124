"""Bring-up time of three sites, phase by phase, and of `fabricml network up` as a whole.

Usage: .venv/bin/python bench/sites_bringup.py [--skip-network-up] [--json]

Phases (each run the way three operators would, the sites in parallel where they share
nothing): site init (CA, TLS CA, identities), bundle export and import, consortium create
(genesis block), site join (orderers, peer, package install, anchor peer, approval),
chaincode commit, site up (gossip, heartbeat, membership, artifact store and API).
Binaries are warm (built and cached); the sites listen on 127.0.81.1-127.0.83.1 with
ports from 27000, the whole consortium on 127.0.84.1-127.0.86.1 from 27500.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rich.console import Console  # noqa: E402

from bench import options  # noqa: E402
from bench.benchnet import CLI  # noqa: E402
from bench.timing import print_steps, timed  # noqa: E402
from fabricml.network import founding, joining, siteup, upgrade  # noqa: E402
from fabricml.network.channeltx import ChannelSettings  # noqa: E402
from fabricml.network.site import Site, on_each  # noqa: E402
from fabricml.network.topology import parse  # noqa: E402

ORGS = ("org1", "org2", "org3")


def three_sites(root: Path, rows: list[tuple[str, float]]) -> None:
    quiet = Console(stderr=True, quiet=True)
    raw = [
        {"name": o, "host": f"127.0.8{i + 1}.1", "ports": {"base": 27000 + 100 * i}}
        for i, o in enumerate(ORGS)
    ]
    orgs = parse({"organizations": raw}).organizations
    sites = [Site(o, root / o.name, console=quiet) for o in orgs]
    try:
        timed(rows, "site init (3 in parallel)", lambda: on_each(sites, lambda s: s.init()))
        timed(rows, "site export + import (6 imports)", lambda: _exchange(sites, root))
        block: list[Path] = []
        timed(rows, "consortium create", lambda: block.extend(_create(sites, root)))
        definition = founding.Definition.load(block[1])
        join = lambda s: joining.join(s, block[0], definition, lambda lines: True)  # noqa: E731
        timed(rows, "site join (3 in parallel)", lambda: on_each(sites, join))
        timed(rows, "chaincode commit", lambda: upgrade.commit(sites[0]))
        timed(rows, "site up (3 in parallel)", lambda: _up(sites))
    finally:
        for s in sites:
            s.down()


def _exchange(sites: list[Site], root: Path) -> None:
    for s in sites:
        s.export(root / f"{s.org.name}.bundle.json")
    for s in sites:
        for other in sites:
            if other is not s:
                s.import_bundle(root / f"{other.org.name}.bundle.json")


def _create(sites: list[Site], root: Path) -> tuple[Path, Path]:
    members = [root / f"{s.org.name}.bundle.json" for s in sites[1:]]
    return founding.create(sites[0], members, ChannelSettings(), founding.Definition(), root / "exchange")


def _up(sites: list[Site]) -> None:
    on_each(sites, siteup.start_core)
    on_each(sites, siteup.ready)
    on_each(sites, siteup.start_services)


def network_up(root: Path, rows: list[tuple[str, float]]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    topology = root / "topology.yaml"
    orgs = "".join(f"  - name: {o}\n    host: 127.0.8{i + 4}.1\n" for i, o in enumerate(ORGS))
    topology.write_text(f"name: bench-sites\nports:\n  base: 27500\norganizations:\n{orgs}")
    where = ["--topology", str(topology), "--state-dir", str(root / "state")]
    try:
        timed(
            rows,
            "fabricml network up (cold state, whole CLI)",
            lambda: subprocess.run(
                [*CLI, "up", *where], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            ),
        )
        subprocess.run([*CLI, "down", *where], check=True, capture_output=True)
        timed(
            rows,
            "fabricml network up (restart)",
            lambda: subprocess.run(
                [*CLI, "up", *where], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            ),
        )
    finally:
        subprocess.run([*CLI, "down", *where], check=False, capture_output=True)


def main() -> None:
    parser = options.parser(__doc__)
    parser.add_argument("--skip-network-up", action="store_true")
    options.add_json(parser)
    args = parser.parse_args()
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="fabricml-bench-sites-") as tmp:
        three_sites(Path(tmp) / "sites", rows)
        rows.append(("three sites, total", sum(t for _, t in rows)))
        if not args.skip_network_up:
            network_up(Path(tmp) / "net", rows)
    print_steps(rows, args.json)


if __name__ == "__main__":
    main()
