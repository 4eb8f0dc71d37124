"""Federated tasks: create, join, start, advance, and their rounds."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from fabricml.contracts import identifiers as ids

from ..deps import AdminDep, ContextDep, ReaderDep
from ..schemas import RoundView, Task, TaskRequest, TaskSummary
from ..services import federation
from .common import LEDGER_ERRORS

router = APIRouter(prefix="/api/v1/federation", tags=["federation"], responses=LEDGER_ERRORS)
TaskId = Annotated[str, Path(pattern=ids.LEDGER_ID_PATTERN)]


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


@router.post("/tasks/{task_id}/advance")
async def advance(task_id: TaskId, _: AdminDep, context: ContextDep) -> Task:
    """Move the round to its next phase when the ledger's time or the participants allow."""
    return await federation.advance(context, task_id)


@router.get("/tasks/{task_id}/rounds")
async def rounds(task_id: TaskId, _: ReaderDep, context: ContextDep) -> list[RoundView]:
    """Each round: phase or outcome, contributions (commitments), rewards, slashes, metrics."""
    return await federation.rounds(context, task_id)
