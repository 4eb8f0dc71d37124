"""Federated tasks (protocol v2): create, join, leave, start, cancel, close, and their
rounds: state, settlement, outcome."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from ..deps import AdminDep, ContextDep, ReaderDep
from ..schemas import RoundResult, RoundState, RoundView, Task, TaskRequest, TaskState, TaskSummary
from ..services import federation
from .common import LEDGER_ERRORS
from .params import LedgerId

router = APIRouter(prefix="/api/v1/federation", tags=["federation"], responses=LEDGER_ERRORS)
TaskId = LedgerId
RoundNumber = Annotated[int, Path(ge=1, le=1000)]


@router.get("/tasks")
async def list_tasks(_: ReaderDep, context: ContextDep) -> list[TaskSummary]:
    """Every task the ledger knows, with its status, round and phase."""
    return await federation.summaries(context)


@router.post("/tasks", status_code=201)
async def create(body: TaskRequest, _: AdminDep, context: ContextDep) -> Task:
    """Open a task; this org escrows the rewards of every round."""
    return await federation.create(context, body)


@router.get("/tasks/{task_id}")
async def get(task_id: TaskId, _: ReaderDep, context: ContextDep) -> Task:
    """A task: status, current round, phase and its deadline, participants, escrow."""
    return await federation.get(context, task_id)


@router.post("/tasks/{task_id}/join")
async def join(task_id: TaskId, _: AdminDep, context: ContextDep) -> Task:
    """Enroll the org's trainer identity; the org stakes the task's stake."""
    return await federation.join(context, task_id)


@router.post("/tasks/{task_id}/start")
async def start(task_id: TaskId, _: AdminDep, context: ContextDep) -> Task:
    """Begin round 1 once enough participants joined."""
    return await federation.start(context, task_id)


@router.post("/tasks/{task_id}/leave")
async def leave(task_id: TaskId, _: AdminDep, context: ContextDep) -> Task:
    """Before the start: the org's trainer leaves and its stake is refunded."""
    return await federation.leave(context, task_id)


@router.post("/tasks/{task_id}/cancel")
async def cancel(task_id: TaskId, _: AdminDep, context: ContextDep) -> Task:
    """The creator cancels a task that has not started; every stake and the rewards are refunded."""
    return await federation.cancel(context, task_id)


@router.post("/tasks/{task_id}/close")
async def close(task_id: TaskId, _: AdminDep, context: ContextDep) -> TaskState:
    """End a task that cannot go on (too few participants left, or past its time): the
    remaining stakes and rewards are refunded."""
    return await federation.close(context, task_id)


@router.get("/tasks/{task_id}/rounds/{number}/state")
async def round_state(task_id: TaskId, number: RoundNumber, _: ReaderDep, context: ContextDep) -> RoundState:
    """Where a round stands: its phase, who committed and posted, the agreed digest."""
    return await federation.round_state(context, task_id, number)


@router.post("/tasks/{task_id}/rounds/{number}/settle")
async def settle(task_id: TaskId, number: RoundNumber, _: AdminDep, context: ContextDep) -> RoundResult:
    """Settle a round once the ledger allows it (a quorum agreed, or its deadlines passed):
    rewards, slashes and refunds."""
    return await federation.settle(context, task_id, number)


@router.get("/tasks/{task_id}/rounds")
async def rounds(task_id: TaskId, _: ReaderDep, context: ContextDep) -> list[RoundView]:
    """Each round: phase or outcome, contributions (commitments), rewards, slashes, metrics."""
    return await federation.rounds(context, task_id)
