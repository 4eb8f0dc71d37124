"""Who the API thinks the caller is."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import ContextDep, ReaderDep
from ..schemas import WhoAmI
from .common import ERRORS

router = APIRouter(prefix="/api/v1", tags=["auth"], responses=ERRORS)


@router.get("/whoami")
def whoami(caller: ReaderDep, context: ContextDep) -> WhoAmI:
    """The authenticated identity (from the client certificate), its org and API role."""
    return WhoAmI(
        subject=caller.subject,
        mspId=caller.msp_id,
        role=caller.role,  # type: ignore[arg-type]
        organization=context.org.name,
        canWrite=caller.can_write,
    )
