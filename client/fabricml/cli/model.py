"""`fabricml model`: register, approve, revoke, inspect and verify model versions."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.table import Table
from rich.text import Text

from .app import App, signer_options

if TYPE_CHECKING:  # the registry pulls in jsonschema and matplotlib: imported by the commands that use it
    from fabricml.contracts.registry import ModelVersion
    from fabricml.registry.service import ModelRegistry

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def _registry(app: App, org: str, identity: str) -> Iterator[ModelRegistry]:
    from fabricml.registry.connect import open_registry

    with open_registry(app.profile(org), identity) as registry:
        yield registry


def _who(default_identity: str) -> Callable[[F], F]:
    return signer_options(default_identity, "Which identity signs.")


def _ref(*extra: Callable[[Any], Any]) -> Callable[[F], F]:
    """REF (name@version) as the first argument, then `extra` arguments and options."""

    def decorate(f: F) -> F:
        for option in extra:
            f = option(f)
        return click.argument("ref")(f)

    return decorate


def _table(app: App, headers: tuple[str, ...], rows: Sequence[tuple[str, ...]], **options: Any) -> None:
    table = Table(*headers, **options)
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))  # cells as text: no markup
    app.results.print(table)


def _show(app: App, record: ModelVersion, extra: dict[str, Any] | None = None) -> None:
    if app.as_json:
        app.emit({**record.to_json(), **(extra or {})})
        return
    rows = [
        ("model", record.ref),
        ("status", record.status),
        ("weights sha256", record.weights.digest),
        ("manifest sha256", record.manifest_digest),
        ("registered by", f"{record.registered_by.subject} ({record.registered_by.msp_id})"),
        ("approvals", ", ".join(a.msp_id for a in record.approvals) or "none"),
    ]
    if record.revocation:
        rows.append(("revoked", f"{record.revocation.reason} ({record.revocation.msp_id})"))
    _table(app, ("field", "value"), rows, show_header=False)


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
def register(app: App, org: str, identity: str, model_dir: Path, **given: Any) -> None:
    """Hash MODEL_DIR, store it, and record its provenance on the ledger."""
    from fabricml.registry.datasets import fingerprint_path
    from fabricml.registry.service import ModelRegistration

    confidential = given["confidential"]
    # The user's input is checked before anything is hashed or sent.
    hyperparameters = dict(_key_value(p) for p in given["params"])
    metrics = _json_arg(given["metrics"], "--metrics") if given["metrics"] else {}
    secret = json.loads(confidential.read_text()) if confidential else None
    with _registry(app, org, identity) as reg:
        what = ModelRegistration(
            name=given["name"],
            version=given["version"],
            training_orgs=[reg.msp_id, *given["training_orgs"]],
            datasets=[fingerprint_path(d) for d in given["datasets"]],
            hyperparameters=hyperparameters,
            metrics=metrics,
            parents=given["parents"],
            round_ref=given["round_ref"],
            confidential=secret,
            code_dir=Path.cwd(),
        )
        record = reg.register(model_dir, what)
    _show(app, record)


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


@model_group.command()
@_who("admin")
@_ref()
def approve(app: App, org: str, identity: str, ref: str) -> None:
    """Approve REF (name@version) for your organization; org admins only."""
    with _registry(app, org, identity) as reg:
        _show(app, reg.approve(ref))


def _status_change(name: str, why: str, doc: str) -> None:
    """`fabricml model revoke|deprecate REF --reason ...`: the same shape, another transaction."""

    @model_group.command(name, help=doc)
    @_who("admin")
    @_ref(click.option("--reason", required=True, help=why))
    def change(app: App, org: str, identity: str, ref: str, reason: str) -> None:
        with _registry(app, org, identity) as reg:
            _show(app, reg.revoke(ref, reason) if name == "revoke" else reg.deprecate(ref, reason))


_status_change("revoke", "Why it is withdrawn.", "Revoke REF for good; inference services stop serving it.")
_status_change("deprecate", "Why it is retired.", "Retire REF; only an admin of an org that trained it may.")


@model_group.command("confirm-training")
@_who("admin")
@_ref()
def confirm_training(app: App, org: str, identity: str, ref: str) -> None:
    """Confirm, as a training org named in REF, that your org trained it as registered
    (datasets included); until every named org confirms, REF cannot be approved."""
    with _registry(app, org, identity) as reg:
        _show(app, reg.confirm_training(ref))


@model_group.command()
@_who("admin")
@_ref(click.option("--reason", required=True, help="Why your org stops using it."))
def suspend(app: App, org: str, identity: str, ref: str, reason: str) -> None:
    """Stop your own org's use of REF at once (its services stop; other orgs go on)."""
    with _registry(app, org, identity) as reg:
        done = reg.suspend(ref, reason)
    app.answer(done.to_json(), f"{ref} suspended by {done.msp_id}: {done.reason}")


@model_group.command()
@_who("admin")
@_ref()
def resume(app: App, org: str, identity: str, ref: str) -> None:
    """Lift your own org's suspension of REF."""
    with _registry(app, org, identity) as reg:
        done = reg.resume(ref)
    app.answer(done.to_json(), f"{ref}: {done.msp_id}'s suspension lifted")


def _grant_change(name: str, doc: str) -> None:
    """`fabricml model grant-confidential|withdraw-grant REF --to MSP`: the owner org's
    admins, endorsed by its own peers only."""

    @model_group.command(name, help=doc)
    @_who("admin")
    @_ref(click.option("--to", "grantee", required=True, help="The other member org's MSP ID."))
    def change(app: App, org: str, identity: str, ref: str, grantee: str) -> None:
        with _registry(app, org, identity) as reg:
            if name == "grant-confidential":
                grant = reg.grant_confidential(ref, grantee)
            else:
                grant = reg.withdraw_confidential_grant(ref, grantee)
        state = "withdrawn" if grant.withdrawn else "granted"
        app.answer(grant.to_json(), f"{ref}: confidential provenance {state} to {grant.grantee}")


_grant_change("grant-confidential", "Let another member org read REF's confidential provenance (your org's).")
_grant_change("withdraw-grant", "End another org's reading of REF's confidential provenance.")


@model_group.command()
@_who("auditor")
@_ref()
def show(app: App, org: str, identity: str, ref: str) -> None:
    """The ledger record of REF."""
    with _registry(app, org, identity) as reg:
        record, deployability = reg.get(ref), reg.deployable(ref)
    _show(app, record, {"deployability": deployability.to_json()})


@model_group.command("list")
@_who("auditor")
@click.option("--name", default="", help="Only this model name.")
@click.option("--page-size", default=50, show_default=True)
@click.option("--bookmark", default="", help="From a previous page.")
def list_models(app: App, org: str, identity: str, name: str, page_size: int, bookmark: str) -> None:
    """Registered versions, a page at a time."""
    with _registry(app, org, identity) as reg:
        page = reg.list_versions(name, page_size, bookmark)
    if app.as_json:
        app.emit(page.to_json())
        return
    rows = [
        (m.ref, m.status, str(len(m.approvals)), m.registered_by.msp_id, m.registered_by.at)
        for m in page.models
    ]
    _table(app, ("model", "status", "approvals", "registered by", "registered at"), rows)
    if page.bookmark:
        click.echo(f"more: --bookmark {page.bookmark}", err=True)


@model_group.command()
@_who("auditor")
@_ref()
def history(app: App, org: str, identity: str, ref: str) -> None:
    """Every committed change of REF's record."""
    with _registry(app, org, identity) as reg:
        entries = reg.history(ref)
    if app.as_json:
        app.emit([e.to_json() for e in entries])
        return
    for e in entries:
        click.echo(f"{e.timestamp}  {e.tx_id}  {e.record.status if e.record else '(deleted)'}")


@model_group.command()
@_who("auditor")
@_ref(
    click.option("--png", type=click.Path(path_type=Path, dir_okay=False), help="Also draw the graph here.")
)
def lineage(app: App, org: str, identity: str, ref: str, png: Path | None) -> None:
    """Ancestry of REF: parents, datasets, federated rounds."""
    from fabricml.registry import lineage_view

    with _registry(app, org, identity) as reg:
        graph = reg.lineage(ref).to_json()
    if png:
        lineage_view.render_png(graph, png)
        click.echo(f"wrote {png}", err=True)
    if app.as_json:
        app.emit(graph)
    else:
        app.results.print(lineage_view.tree(graph))


@model_group.command()
@_who("auditor")
@_ref(click.argument("model_dir", type=click.Path(path_type=Path, file_okay=False, exists=True)))
def verify(app: App, org: str, identity: str, ref: str, model_dir: Path) -> None:
    """Recompute MODEL_DIR's digests and compare them with REF on the ledger, file by file."""
    with _registry(app, org, identity) as reg:
        problems = reg.verify_dir(ref, model_dir)
    if app.as_json:
        app.emit({"ref": ref, "matches": not problems, "problems": problems})
    elif problems:
        click.echo(f"{model_dir} does NOT match {ref}:")
        for p in problems:
            click.echo(f"  {p}")
    else:
        click.echo(f"{model_dir} matches {ref} on the ledger")
    sys.exit(1 if problems else 0)


def _manifest(reg: ModelRegistry, ref: str) -> dict[str, Any] | None:
    """The version's provenance manifest, when a reachable store holds it."""
    from fabricml.registry.artifacts import ArtifactError

    try:
        return reg.manifest(ref).document
    except ArtifactError:
        return None


@model_group.command("audit-report")
@_who("auditor")
@_ref(
    click.option(
        "--out", type=click.Path(path_type=Path, dir_okay=False), required=True, help="HTML file to write."
    )
)
def audit_report(app: App, org: str, identity: str, ref: str, out: Path) -> None:
    """An HTML report for auditors: record, approvals, lineage graph, history, manifest."""
    from fabricml.registry import report

    with _registry(app, org, identity) as reg:
        html = report.render(
            reg.get(ref).to_json(),
            reg.deployable(ref).to_json(),
            [e.to_json() for e in reg.history(ref)],
            reg.lineage(ref).to_json(),
            _manifest(reg, ref),
        )
    out.write_text(html)
    if app.as_json:
        app.emit({"ref": ref, "report": str(out)})
    else:
        click.echo(f"wrote {out}")


@model_group.command("export-cyclonedx")
@_who("auditor")
@_ref(
    click.option(
        "--out", type=click.Path(path_type=Path, dir_okay=False), help="File to write (default: stdout)."
    )
)
def export_cyclonedx(app: App, org: str, identity: str, ref: str, out: Path | None) -> None:
    """A CycloneDX 1.6 ML-BOM of REF."""
    from fabricml.registry import cyclonedx

    with _registry(app, org, identity) as reg:
        record, manifest = reg.get(ref), _manifest(reg, ref)
    text = json.dumps(cyclonedx.ml_bom(record.to_json(), manifest), indent=2, sort_keys=True)
    if out:
        out.write_text(text + "\n")
    else:
        click.echo(text)


@model_group.command("import-signature")
@_who("auditor")
@_ref(
    click.argument("bundle", type=click.Path(path_type=Path, dir_okay=False, exists=True)),
    click.option(
        "--public-key",
        type=click.Path(path_type=Path, dir_okay=False, exists=True),
        required=True,
        help="PEM public key the bundle was signed with.",
    ),
)
def import_signature(app: App, org: str, identity: str, ref: str, bundle: Path, public_key: Path) -> None:
    """Check an OpenSSF model-signing BUNDLE: valid signature, same files as REF on the ledger."""
    from fabricml.registry.signatures import check_bundle

    with _registry(app, org, identity) as reg:
        check = check_bundle(reg, ref, bundle, public_key)
    if app.as_json:
        app.emit(check.to_json())
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
def policy_vote(app: App, org: str, identity: str, name: str, rule: str) -> None:
    """Vote for RULE (MAJORITY, ALL, ANY, AT_LEAST_<n>) for model NAME."""
    with _registry(app, org, identity) as reg:
        policy = reg.vote_policy(name, rule)
    if app.as_json:
        app.emit(policy.to_json())
    else:
        click.echo(f"{name}: rule in force {policy.rule}")
