"""Dependencies shared by the routers: the process's context and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from .auth import Caller
from .context import ApiContext


def get_context(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.context
    return context


def get_caller(request: Request) -> Caller:
    """The client certificate's identity, authenticated by the guard middleware."""
    caller = request.scope.get("state", {}).get("caller")
    if not isinstance(caller, Caller):
        raise HTTPException(401, "a client certificate is required (mutual TLS)")
    return caller


def require_admin(caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
    if not caller.can_write:
        raise HTTPException(403, f"{caller.subject} is an {caller.role}: read-only; this needs an org admin")
    return caller


ContextDep = Annotated[ApiContext, Depends(get_context)]
ReaderDep = Annotated[Caller, Depends(get_caller)]
AdminDep = Annotated[Caller, Depends(require_admin)]
