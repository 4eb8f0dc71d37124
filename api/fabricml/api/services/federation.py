"""Federated tasks and their rounds: phases, commitments (contributions), results with
rewards and slashes, and metrics per round where the ledger has them."""

from __future__ import annotations

from collections.abc import Callable

from fabricml.contracts import FederationClient, RegistryClient
from fabricml.contracts.federation import Commitment as LedgerCommitment
from fabricml.contracts.federation import RoundResult
from fabricml.contracts.federation import Task as LedgerTask
from fabricml.contracts.federation import TaskRequest as LedgerTaskRequest
from fabricml.contracts.registry import ModelVersion

from ..context import ApiContext
from ..ledger import LedgerError
from ..schemas import Commitment, RoundView, Task, TaskRequest, TaskSummary
from ..schemas import RoundResult as RoundResultBody
from ..schemas import RoundState as RoundStateBody
from ..schemas import TaskState as TaskStateBody


async def _task(context: ApiContext, identity: str, use: Callable[[FederationClient], LedgerTask]) -> Task:
    """The lifecycle calls answer with the task's terms: the answer is the task as GetTask
    shows it after the call (round, phase, escrow, state)."""
    done = await context.ledger.call(identity, FederationClient, use)
    who = context.settings.auditor_identity
    view = await context.ledger.call(who, FederationClient, lambda f: f.get_task(done.id))
    return Task.model_validate(view.to_json())


async def create(context: ApiContext, request: TaskRequest) -> Task:
    ledger_request = LedgerTaskRequest.from_json(request.model_dump())
    return await _task(context, context.settings.admin_identity, lambda f: f.create_task(ledger_request))


async def get(context: ApiContext, task_id: str) -> Task:
    who = context.settings.auditor_identity
    return Task.model_validate(
        (await context.ledger.call(who, FederationClient, lambda f: f.get_task(task_id))).to_json()
    )


async def join(context: ApiContext, task_id: str) -> Task:
    # Join records the calling identity as a participant: that is the org's trainer.
    return await _task(context, context.settings.trainer_identity, lambda f: f.join(task_id))


async def start(context: ApiContext, task_id: str) -> Task:
    return await _task(context, context.settings.admin_identity, lambda f: f.start(task_id))


async def leave(context: ApiContext, task_id: str) -> Task:
    # Before the start only; the trainer identity is the participant that leaves.
    return await _task(context, context.settings.trainer_identity, lambda f: f.leave(task_id))


async def cancel(context: ApiContext, task_id: str) -> Task:
    return await _task(context, context.settings.admin_identity, lambda f: f.cancel(task_id))


async def close(context: ApiContext, task_id: str) -> TaskStateBody:
    found = await context.ledger.call(
        context.settings.admin_identity, FederationClient, lambda f: f.close(task_id)
    )
    return TaskStateBody.model_validate(found.to_json())


async def round_state(context: ApiContext, task_id: str, number: int) -> RoundStateBody:
    who = context.settings.auditor_identity
    found = await context.ledger.call(who, FederationClient, lambda f: f.get_round_state(task_id, number))
    return RoundStateBody.model_validate(found.to_json())


async def settle(context: ApiContext, task_id: str, number: int) -> RoundResultBody:
    """Anyone may settle a round once it is settleable; the ledger's state and clock decide."""
    who = context.settings.admin_identity
    found = await context.ledger.call(who, FederationClient, lambda f: f.settle(task_id, number))
    return RoundResultBody.model_validate(found.to_json())


def task_ids(context: ApiContext) -> list[str]:
    """The chaincode lists no tasks: their TaskCreated events do (ActivityIndex)."""
    with context.activity.lock:
        return list(context.activity.tasks)


async def summaries(context: ApiContext) -> list[TaskSummary]:
    out = []
    for task_id in task_ids(context):
        try:
            t = await get(context, task_id)
        except LedgerError:
            continue
        out.append(TaskSummary(id=t.id, status=t.status, round=t.round, phase=t.phase, creator=t.creator))
    return out


def _metrics(
    result: RoundResult | None, models: tuple[ModelVersion, ...], task_id: str, number: int
) -> dict[str, float]:
    raw = (result.extra.get("metrics") if result else None) or {}
    if not raw:
        # The round's global model, registered by the agents with round "<task>/<round>" and
        # the registering participant's held-out metrics.
        raw = next((m.metrics for m in models if m.round == f"{task_id}/{number}"), {})
    return {str(k): float(v) for k, v in raw.items() if isinstance(v, int | float)}


async def _result(context: ApiContext, task_id: str, number: int) -> RoundResult | None:
    """How the round ended; None while it runs."""
    try:
        return await context.ledger.call(
            context.settings.auditor_identity, FederationClient, lambda f: f.get_round(task_id, number)
        )
    except LedgerError as exc:
        if exc.status != 404:
            raise
        return None


async def _commitments(context: ApiContext, task_id: str, number: int) -> tuple[LedgerCommitment, ...]:
    return await context.ledger.call(
        context.settings.auditor_identity, FederationClient, lambda f: f.commitments(task_id, number)
    )


async def rounds(context: ApiContext, task_id: str) -> list[RoundView]:
    who = context.settings.auditor_identity
    task = await get(context, task_id)
    page = await context.ledger.call(who, RegistryClient, lambda r: r.list_versions("", 200, ""))
    models = tuple(m for m in page.models if m.round.startswith(task_id))
    views = []
    for number in range(1, task.round + 1):
        commitments = await _commitments(context, task_id, number)
        result = await _result(context, task_id, number)
        views.append(
            RoundView(
                round=number,
                state=result.status if result else task.phase,
                commitments=[Commitment.model_validate(c.to_json()) for c in commitments],
                result=None if result is None else RoundResultBody.model_validate(result.to_json()),
                metrics=_metrics(result, models, task_id, number),
            )
        )
    return views
