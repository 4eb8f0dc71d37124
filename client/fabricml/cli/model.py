"""`fabricml model`: register, approve, revoke, inspect and verify model versions."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

import click
from rich.console import Console
from rich.table import Table

from fabricml.gateway import CommitError, GatewayError
from fabricml.network.topology import TopologyError
from fabricml.registry import cyclonedx, lineage_view, report
from fabricml.registry.artifacts import ArtifactError
from fabricml.registry.connect import open_registry
from fabricml.registry.datasets import fingerprint_path
from fabricml.registry.manifest import ManifestError
from fabricml.registry.service import ModelRegistry, ModelVerificationError
from fabricml.registry.signatures import check_bundle

from .common import echo_json, fail, network_options, profile_for

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
ERRORS = (
    GatewayError,
    CommitError,
    ArtifactError,
    ManifestError,
    ModelVerificationError,
    TopologyError,
    ValueError,
)


@contextmanager
def registry_for(
    org: str, identity: str, topology: Path | None, state_dir: Path | None
) -> Iterator[ModelRegistry]:
    with open_registry(profile_for(topology, state_dir, org), identity) as registry:
        yield registry


def _using(
    org: str,
    identity: str,
    topology: Path | None,
    state_dir: Path | None,
    action: Callable[[ModelRegistry], T],
) -> T:
    """Run one registry action as the org's identity; a failure prints a clear error and exits 1."""
    try:
        with registry_for(org, identity, topology, state_dir) as reg:
            return action(reg)
    except ERRORS as exc:
        fail(exc)


def _who(default_identity: str) -> Callable[[F], F]:
    def decorate(f: F) -> F:
        f = click.option(
            "--identity", default=default_identity, show_default=True, help="Which identity signs."
        )(f)
        f = click.option("--org", default="org1", show_default=True, help="Organization to act for.")(f)
        f = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")(f)
        return cast(F, network_options(f))

    return decorate


def _show(record: dict[str, Any], as_json: bool) -> None:
    if as_json:
        echo_json(record)
        return
    table = Table("field", "value", show_header=False)
    table.add_row("model", f"{record['name']}@{record['version']}")
    table.add_row("status", record["status"])
    table.add_row("weights sha256", record["weights"]["digest"])
    table.add_row("manifest sha256", record["manifestDigest"])
    table.add_row("registered by", f"{record['registeredBy']['subject']} ({record['registeredBy']['mspId']})")
    table.add_row("approvals", ", ".join(a["mspId"] for a in record["approvals"]) or "none")
    if record.get("revocation"):
        table.add_row("revoked", f"{record['revocation']['reason']} ({record['revocation']['mspId']})")
    Console().print(table)


@click.group("model")
def model_group() -> None:
    """The model registry: provenance, multi-org approval, lineage, verification."""


@model_group.command()
@_who("trainer")
@click.argument("model_dir", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option("--name", required=True, help="Model name, e.g. credit-risk.")
@click.option("--version", "version", required=True, help="Version, e.g. 1.0.")
@click.option(
    "--dataset",
    "datasets",
    multiple=True,
    type=click.Path(path_type=Path, exists=True),
    help="Training data file or folder to fingerprint (repeatable); the data never leaves.",
)
@click.option("--metrics", help="Evaluation metrics: a JSON object or a JSON file.")
@click.option("--param", "params", multiple=True, help="Hyperparameter KEY=VALUE (repeatable).")
@click.option("--parent", "parents", multiple=True, help="Parent version name@version (repeatable).")
@click.option("--round", "round_ref", default="", help="Federated round that produced it.")
@click.option(
    "--confidential",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="JSON file of confidential provenance, kept in your org's private collection.",
)
@click.option("--training-org", "training_orgs", multiple=True, help="Other training org MSP IDs.")
def register(
    model_dir: Path, name: str, version: str, datasets: tuple[Path, ...], metrics: str | None,
    params: tuple[str, ...], parents: tuple[str, ...], round_ref: str, confidential: Path | None,
    training_orgs: tuple[str, ...], org: str, identity: str, as_json: bool, topology: Path | None,
    state_dir: Path | None,
) -> None:  # fmt: skip
    """Hash MODEL_DIR, store it, and record its provenance on the ledger."""
    try:
        metric_values = _json_arg(metrics, "--metrics") if metrics else {}
        hyper = dict(_key_value(p) for p in params)
        secret = json.loads(confidential.read_text()) if confidential else None
        fingerprints = [fingerprint_path(d) for d in datasets]
        with registry_for(org, identity, topology, state_dir) as reg:
            record = reg.register(
                model_dir, name, version, [reg.msp_id, *training_orgs], fingerprints, hyper, metric_values,
                list(parents), round_ref, secret, code_dir=Path.cwd(),
            )  # fmt: skip
    except ERRORS as exc:
        fail(exc)
    _show(record, as_json)


def _json_arg(value: str, option: str) -> dict[str, Any]:
    path = Path(value)
    text = path.read_text() if path.is_file() else value
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{option} must be a JSON object or a JSON file: {exc}") from None
    if not isinstance(parsed, dict):
        raise ValueError(f"{option} must be a JSON object")
    return parsed


def _key_value(pair: str) -> tuple[str, Any]:
    key, sep, value = pair.partition("=")
    if not sep or not key:
        raise ValueError(f"--param {pair!r} is not KEY=VALUE")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _transaction(function: str, default_identity: str, *extra: Any) -> Callable[[F], F]:
    def command(f: F) -> F:
        f = click.argument("ref")(f)
        for option in extra:
            f = option(f)
        return _who(default_identity)(f)

    return command


@model_group.command()
@_transaction("Approve", "admin")
def approve(
    ref: str, org: str, identity: str, as_json: bool, topology: Path | None, state_dir: Path | None
) -> None:
    """Approve REF (name@version) for your organization; org admins only."""
    record = _using(org, identity, topology, state_dir, lambda reg: reg.approve(ref))
    _show(record, as_json)


@model_group.command()
@_transaction("Revoke", "admin", click.option("--reason", required=True, help="Why it is withdrawn."))
def revoke(
    ref: str,
    reason: str,
    org: str,
    identity: str,
    as_json: bool,
    topology: Path | None,
    state_dir: Path | None,
) -> None:
    """Revoke REF for good; inference services stop serving it."""
    record = _using(org, identity, topology, state_dir, lambda reg: reg.revoke(ref, reason))
    _show(record, as_json)


@model_group.command()
@_transaction("Deprecate", "admin", click.option("--reason", required=True, help="Why it is retired."))
def deprecate(
    ref: str,
    reason: str,
    org: str,
    identity: str,
    as_json: bool,
    topology: Path | None,
    state_dir: Path | None,
) -> None:
    """Retire REF; only an admin of an org that trained it may."""
    record = _using(org, identity, topology, state_dir, lambda reg: reg.deprecate(ref, reason))
    _show(record, as_json)


@model_group.command()
@_transaction("Get", "auditor")
def show(
    ref: str, org: str, identity: str, as_json: bool, topology: Path | None, state_dir: Path | None
) -> None:
    """The ledger record of REF."""
    try:
        with registry_for(org, identity, topology, state_dir) as reg:
            record = reg.get(ref)
            record["deployability"] = reg.deployable(ref)
    except ERRORS as exc:
        fail(exc)
    _show(record, as_json)


@model_group.command("list")
@_who("auditor")
@click.option("--name", default="", help="Only this model name.")
@click.option("--page-size", default=50, show_default=True)
@click.option("--bookmark", default="", help="From a previous page.")
def list_models(
    name: str, page_size: int, bookmark: str, org: str, identity: str, as_json: bool, topology: Path | None,
    state_dir: Path | None,
) -> None:  # fmt: skip
    """Registered versions, a page at a time."""
    page = _using(
        org, identity, topology, state_dir, lambda reg: reg.list_versions(name, page_size, bookmark)
    )
    if as_json:
        echo_json(page)
        return
    table = Table("model", "status", "approvals", "registered by", "registered at")
    for m in page["models"]:
        table.add_row(f"{m['name']}@{m['version']}", m["status"], str(len(m["approvals"])),
                      m["registeredBy"]["mspId"], m["registeredBy"]["at"])  # fmt: skip
    Console().print(table)
    if page["bookmark"]:
        click.echo(f"more: --bookmark {page['bookmark']}", err=True)


@model_group.command()
@_transaction("History", "auditor")
def history(
    ref: str, org: str, identity: str, as_json: bool, topology: Path | None, state_dir: Path | None
) -> None:
    """Every committed change of REF's record."""
    entries = _using(org, identity, topology, state_dir, lambda reg: reg.history(ref))
    if as_json:
        echo_json(entries)
        return
    for e in entries:
        click.echo(f"{e['timestamp']}  {e['txId']}  {e['record']['status']}")


@model_group.command()
@_transaction("Lineage", "auditor")
@click.option(
    "--png", type=click.Path(path_type=Path, dir_okay=False), help="Also draw the lineage graph here."
)
def lineage(
    ref: str,
    png: Path | None,
    org: str,
    identity: str,
    as_json: bool,
    topology: Path | None,
    state_dir: Path | None,
) -> None:
    """Ancestry of REF: parents, datasets, federated rounds."""
    graph = _using(org, identity, topology, state_dir, lambda reg: reg.lineage(ref))
    if png:
        lineage_view.render_png(graph, png)
        click.echo(f"wrote {png}", err=True)
    if as_json:
        echo_json(graph)
    else:
        Console().print(lineage_view.tree(graph))


@model_group.command()
@_transaction("Verify", "auditor")
@click.argument("model_dir", type=click.Path(path_type=Path, file_okay=False, exists=True))
def verify(
    ref: str, model_dir: Path, org: str, identity: str, as_json: bool, topology: Path | None,
    state_dir: Path | None,
) -> None:  # fmt: skip
    """Recompute MODEL_DIR's digests and compare them with REF on the ledger, file by file."""
    problems = _using(org, identity, topology, state_dir, lambda reg: reg.verify_dir(ref, model_dir))
    if as_json:
        echo_json({"ref": ref, "matches": not problems, "problems": problems})
    elif problems:
        click.echo(f"{model_dir} does NOT match {ref}:")
        for p in problems:
            click.echo(f"  {p}")
    else:
        click.echo(f"{model_dir} matches {ref} on the ledger")
    sys.exit(1 if problems else 0)


@model_group.command("audit-report")
@_transaction("Report", "auditor")
@click.option(
    "--out", type=click.Path(path_type=Path, dir_okay=False), required=True, help="HTML file to write."
)
def audit_report(
    ref: str, out: Path, org: str, identity: str, as_json: bool, topology: Path | None, state_dir: Path | None
) -> None:
    """An HTML report for auditors: record, approvals, lineage graph, history, manifest."""
    try:
        with registry_for(org, identity, topology, state_dir) as reg:
            record = reg.get(ref)
            try:
                manifest: dict[str, Any] | None = reg.manifest(ref).document
            except ArtifactError:
                manifest = None
            html = report.render(record, reg.deployable(ref), reg.history(ref), reg.lineage(ref), manifest)
    except ERRORS as exc:
        fail(exc)
    out.write_text(html)
    if as_json:
        echo_json({"ref": ref, "report": str(out)})
    else:
        click.echo(f"wrote {out}")


@model_group.command("export-cyclonedx")
@_transaction("Export", "auditor")
@click.option(
    "--out", type=click.Path(path_type=Path, dir_okay=False), help="File to write (default: stdout)."
)
def export_cyclonedx(
    ref: str, out: Path | None, org: str, identity: str, as_json: bool, topology: Path | None,
    state_dir: Path | None,
) -> None:  # fmt: skip
    """A CycloneDX 1.6 ML-BOM of REF."""
    try:
        with registry_for(org, identity, topology, state_dir) as reg:
            record = reg.get(ref)
            try:
                manifest: dict[str, Any] | None = reg.manifest(ref).document
            except ArtifactError:
                manifest = None
    except ERRORS as exc:
        fail(exc)
    text = json.dumps(cyclonedx.ml_bom(record, manifest), indent=2, sort_keys=True)
    if out:
        out.write_text(text + "\n")
    else:
        click.echo(text)


@model_group.command("import-signature")
@_transaction("Signature", "auditor")
@click.argument("bundle", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--public-key", type=click.Path(path_type=Path, dir_okay=False, exists=True), required=True,
              help="PEM public key the bundle was signed with.")  # fmt: skip
def import_signature(
    ref: str, bundle: Path, public_key: Path, org: str, identity: str, as_json: bool, topology: Path | None,
    state_dir: Path | None,
) -> None:  # fmt: skip
    """Check an OpenSSF model-signing BUNDLE: valid signature, same files as REF on the ledger."""
    check = _using(org, identity, topology, state_dir, lambda reg: check_bundle(reg, ref, bundle, public_key))
    if as_json:
        echo_json(check.to_json())
    else:
        click.echo(f"signature valid:        {check.signature_valid} {check.signature_error}")
        click.echo(f"signed root digest:     {check.signed_root_digest}")
        click.echo(f"registered root digest: {check.registered_root_digest}")
        for p in check.file_problems:
            click.echo(f"  {p}")
        click.echo("OK: the signature covers exactly the registered files" if check.ok else "MISMATCH")
    sys.exit(0 if check.ok else 1)


@model_group.group("policy")
def policy_group() -> None:
    """Deployment policy per model name, set by consortium vote."""


@policy_group.command("vote")
@_who("admin")
@click.argument("name")
@click.argument("rule")
def policy_vote(
    name: str,
    rule: str,
    org: str,
    identity: str,
    as_json: bool,
    topology: Path | None,
    state_dir: Path | None,
) -> None:
    """Vote for RULE (MAJORITY, ALL, ANY, AT_LEAST_<n>) for model NAME."""
    policy = _using(org, identity, topology, state_dir, lambda reg: reg.vote_policy(name, rule))
    if as_json:
        echo_json(policy)
    else:
        click.echo(f"{name}: rule in force {policy['rule']}")
