"""Federated tasks and their rounds: phases, commitments (contributions), results with
rewards and slashes, and metrics per round where the ledger has them."""

from __future__ import annotations

import json
from typing import Any

from ..context import ApiContext
from ..ledger import LedgerError
from ..schemas import Commitment, RoundResult, RoundView, Task, TaskRequest, TaskSummary


async def create(context: ApiContext, request: TaskRequest) -> Task:
    task = await context.ledger.submit(
        context.settings.admin_identity,
        "Federation",
        "CreateTask",
        json.dumps(request.model_dump(), sort_keys=True),
    )
    return Task.model_validate(task)


async def get(context: ApiContext, task_id: str) -> Task:
    return Task.model_validate(
        await context.ledger.evaluate(context.settings.auditor_identity, "Federation", "GetTask", task_id)
    )


async def join(context: ApiContext, task_id: str) -> Task:
    # Join records the calling identity as a participant: that is the org's trainer.
    task = await context.ledger.submit(context.settings.trainer_identity, "Federation", "Join", task_id)
    return Task.model_validate(task)


async def transition(context: ApiContext, task_id: str, function: str) -> Task:
    task = await context.ledger.submit(context.settings.admin_identity, "Federation", function, task_id)
    return Task.model_validate(task)


async def task_ids(context: ApiContext) -> list[str]:
    """From the chaincode's ListTasks where it exists, else from TaskCreated events."""
    try:
        listed = await context.ledger.evaluate(context.settings.auditor_identity, "Federation", "ListTasks")
    except LedgerError:
        with context.activity.lock:
            return list(context.activity.tasks)
    items = listed.get("tasks", listed) if isinstance(listed, dict) else listed
    return [str(t["id"] if isinstance(t, dict) else t) for t in items or []]


async def summaries(context: ApiContext) -> list[TaskSummary]:
    out = []
    for task_id in await task_ids(context):
        try:
            t = await get(context, task_id)
        except LedgerError:
            continue
        out.append(TaskSummary(id=t.id, status=t.status, round=t.round, phase=t.phase, creator=t.creator))
    return out


def _metrics(
    result: dict[str, Any] | None, models: list[dict[str, Any]], task_id: str, number: int
) -> dict[str, float]:
    raw: Any = (result or {}).get("metrics")
    if not raw:
        # The round's global model, registered by the agents with round "<task>/<round>" and
        # the registering participant's held-out metrics.
        raw = next((m.get("metrics") for m in models if m.get("round") == f"{task_id}/{number}"), None)
    return {str(k): float(v) for k, v in (raw or {}).items() if isinstance(v, int | float)}


async def rounds(context: ApiContext, task_id: str) -> list[RoundView]:
    who = context.settings.auditor_identity
    task = await get(context, task_id)
    page = await context.ledger.evaluate(who, "Registry", "List", "", "200", "")
    models = [m for m in (page.get("models") or []) if str(m.get("round", "")).startswith(task_id)]
    views = []
    for number in range(1, task.round + 1):
        commitments = (
            await context.ledger.evaluate(who, "Federation", "Commitments", task_id, str(number)) or []
        )
        try:
            result = await context.ledger.evaluate(who, "Federation", "GetRound", task_id, str(number))
        except LedgerError as exc:
            if exc.status != 404:
                raise
            result = None
        state = result["status"] if result else task.phase
        views.append(
            RoundView(
                round=number,
                state=state,
                commitments=[Commitment.model_validate(c) for c in commitments],
                result=RoundResult.model_validate(result) if result else None,
                metrics=_metrics(result, models, task_id, number),
            )
        )
    return views
