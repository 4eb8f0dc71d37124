"""`fabricml site deploy compose|helm|build-helm`: deployment files for one site, from its site
file and the directory `site init` made."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from ..binaries import BuildError
from ..clierrors import reports
from ..sitefile import SiteFileError
from . import chart, compose
from .filesets import FileSetError
from .helmbuild import ensure_helm
from .source import KUBERNETES_LISTEN, DeployError, load_plan
from .writer import inside

console = Console(stderr=True, soft_wrap=True)
ERRORS = (DeployError, FileSetError, SiteFileError, BuildError, OSError)
_reports = reports(console, *ERRORS)


def _out(state_dir: Path, out: Path | None, default: str) -> Path:
    """Generated files stay in the site directory (0700): they name its key files and mount them."""
    chosen = (out or state_dir / "deploy" / default).absolute()
    if not inside(chosen, state_dir):
        raise DeployError(f"--out {chosen} is outside the site {state_dir}; choose a folder inside it")
    return chosen


def _common(f: click.decorators.FC) -> click.decorators.FC:
    f = click.option("--version", "cc_version", help="Chaincode version (default: the site's deployed one).")(
        f
    )
    f = click.option(
        "--out", type=click.Path(path_type=Path, file_okay=False), help="Folder inside the site."
    )(f)
    f = click.option(
        "--site-file", type=click.Path(path_type=Path, dir_okay=False), help="Must match the site's own."
    )(f)
    f = click.option(
        "--state-dir", required=True, type=click.Path(path_type=Path, file_okay=False), help="The site."
    )(f)
    return f


@click.group("deploy")
def deploy_group() -> None:
    """Run the site's nodes in containers: a compose file or a Helm chart for this org alone."""


@deploy_group.command("compose")
@_reports
@_common
def compose_cmd(state_dir: Path, site_file: Path | None, out: Path | None, cc_version: str | None) -> None:
    """docker-compose.yaml (host networking), the fabricml Dockerfile and the nodes' config."""
    root = state_dir.resolve()
    plan = load_plan(root, site_file, None, cc_version)
    info = root.stat()
    path = compose.write(plan, _out(root, out, "compose"), f"{info.st_uid}:{info.st_gid}")
    console.print(f"wrote {path}")
    console.print(f"  build: FABRICML_SOURCE=/path/to/fabricml docker compose -f {path} build")
    console.print(f"  run:   docker compose -f {path} up -d")


@deploy_group.command("helm")
@_reports
@_common
def helm_cmd(state_dir: Path, site_file: Path | None, out: Path | None, cc_version: str | None) -> None:
    """A Helm chart of the site's nodes and the script that creates its Secrets from the site."""
    root = state_dir.resolve()
    plan = load_plan(root, site_file, KUBERNETES_LISTEN, cc_version)
    chart_dir, script = chart.write(plan, _out(root, out, "helm"))
    console.print(f"wrote the chart {chart_dir} and {script}")
    console.print(f"  secrets: NAMESPACE=<ns> sh {script}")
    console.print(f"  install: helm install {plan.org.name} {chart_dir} --namespace <ns>")


@deploy_group.command("build-helm")
@reports(console, BuildError)
def build_helm() -> None:
    """Build the pinned Helm from the Go module proxy into the cache (for offline checks)."""
    click.echo(str(ensure_helm(console)))
