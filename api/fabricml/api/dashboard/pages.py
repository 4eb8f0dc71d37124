"""Server-rendered dashboard pages: network, models, federated rounds, attestations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from ..deps import ContextDep, ReaderDep
from ..ledger import LedgerError
from ..routers.common import LEDGER_ERRORS
from ..routers.params import LedgerId, ModelName, ModelVersion
from ..services import attestations, federation, models, network, tokens
from .actions import approve_model

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
# Response, not HTMLResponse, as the class: the documented errors stay application/json.
router = APIRouter(tags=["dashboard"], default_response_class=Response, responses=LEDGER_ERRORS)
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
HTML: dict[int | str, dict[str, Any]] = {200: {"content": {"text/html": {}}, "description": "Dashboard page"}}


def _page(request: Request, template: str, title: str, page: str, **values: Any) -> HTMLResponse:
    context = request.app.state.context
    values.update(
        title=title,
        page=page,
        org=context.org.name,
        msp=context.org.msp_id,
        caller=request.scope["state"]["caller"],
    )
    return templates.TemplateResponse(request, template, values, headers=HEADERS)


def _chart(x: list[int], series: dict[str, list[float | None]], x_label: str, empty: str) -> dict[str, Any]:
    return {
        "x": x,
        "xLabel": x_label,
        "empty": empty,
        "series": [{"label": k, "values": v} for k, v in series.items()],
    }


@router.get("/", responses=HTML)
async def overview(request: Request, _: ReaderDep, context: ContextDep) -> HTMLResponse:
    """Network health, heights, members and recent ledger activity."""
    view = await network.view(context)
    with context.activity.lock:
        recent = list(context.activity.recent)[:25]
    return _page(request, "network.html", "Network health", "network", view=view, activity=recent)


@router.get("/models", responses=HTML)
async def model_list(request: Request, _: ReaderDep, context: ContextDep, bookmark: str = "") -> HTMLResponse:
    """The registry, a page at a time."""
    page = await models.list_models(context, "", 50, bookmark[:512])
    return _page(request, "models.html", "Model registry", "models", listing=page)


@router.get("/models/{name}/{version}", responses=HTML)
async def model_page(
    request: Request,
    _: ReaderDep,
    context: ContextDep,
    name: ModelName,
    version: ModelVersion,
) -> HTMLResponse:
    """One version: status, approvals (approve button for admins), lineage graph, record."""
    detail = await models.show(context, name, version)
    caller = request.scope["state"]["caller"]
    approve = approve_model(detail.record, caller, context.org.msp_id)
    return _page(request, "model.html", f"{name}@{version}", "models", detail=detail, approve=approve)


@router.get("/federation", responses=HTML)
async def task_list(request: Request, _: ReaderDep, context: ContextDep) -> HTMLResponse:
    """Federated tasks and token balances."""
    tasks = await federation.summaries(context)
    balances = await tokens.balances(context)
    return _page(
        request, "federation.html", "Federated training", "federation", tasks=tasks, balances=balances
    )


@router.get("/federation/{task_id}", responses=HTML)
async def task_page(
    request: Request,
    _: ReaderDep,
    context: ContextDep,
    task_id: LedgerId,
) -> HTMLResponse:
    """One task: phase, participants, rounds with contributions, rewards, slashes, and charts."""
    task = await federation.get(context, task_id)
    rounds = await federation.rounds(context, task_id)
    names = sorted({k for r in rounds for k in r.metrics if "acc" in k.lower() or "loss" in k.lower()})
    chart = _chart(
        [r.round for r in rounds],
        {n: [r.metrics.get(n) for r in rounds] for n in names},
        "round",
        "no accuracy or loss recorded for this task's rounds yet",
    )
    return _page(request, "task.html", f"Task {task_id}", "federation", task=task, rounds=rounds, chart=chart)


@router.get("/attestations", responses=HTML)
async def attestation_page(request: Request, _: ReaderDep, context: ContextDep) -> HTMLResponse:
    """Inference services, anchored batches (with a chart of receipts per batch), claims."""
    services = await attestations.services(context)
    batches = []
    for s in services:
        if s.lastSequence:
            try:
                batches += await attestations.batches(context, s.service.mspId, s.service.subject, 20)
            except LedgerError:
                continue
    batches.sort(key=lambda b: b.anchoredAt)
    chart = _chart(
        list(range(1, len(batches) + 1)),
        {"receipts": [float(b.count) for b in batches]},
        "batch (oldest first)",
        "no receipt batches anchored yet",
    )
    claims = await attestations.claims(context)
    return _page(
        request,
        "attestations.html",
        "Attestation activity",
        "attestations",
        services=services,
        batches=list(reversed(batches)),
        chart=chart,
        claims=claims,
    )
