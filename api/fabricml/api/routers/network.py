"""The consortium's nodes, health, heights, members and chaincode version."""

from __future__ import annotations

from fastapi import APIRouter, Query

from ..deps import ContextDep, ReaderDep
from ..schemas import Activity, NetworkView
from ..services import network
from .common import LEDGER_ERRORS

router = APIRouter(prefix="/api/v1/network", tags=["network"], responses=LEDGER_ERRORS)


@router.get("")
async def network_view(_: ReaderDep, context: ContextDep) -> NetworkView:
    """Every node's health (operations endpoints), block heights, members and chaincode version."""
    return await network.view(context)


@router.get("/activity")
def activity(_: ReaderDep, context: ContextDep, limit: int = Query(50, ge=1, le=200)) -> list[Activity]:
    """The latest chaincode events on the channel, newest first."""
    with context.activity.lock:
        recent = list(context.activity.recent)[:limit]
    return [
        Activity(event=e.event, block=e.block, transactionId=e.transaction_id, summary=e.summary)
        for e in recent
    ]
