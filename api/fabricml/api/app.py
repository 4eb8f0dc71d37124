"""The FastAPI application of one org: routers, dashboard, guards, errors, metrics."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException

from . import __doc__ as summary
from .context import ApiContext, open_context
from .dashboard import pages
from .deps import ReaderDep
from .ledger import LedgerError
from .metrics import LEDGER_ERRORS, REGISTRY
from .middleware import GuardMiddleware
from .routers import attestations, federation, identities, models, network, tokens, whoami
from .routers.common import ERRORS
from .schemas import ErrorBody
from .settings import ApiSettings

log = logging.getLogger("fabricml.api")
STATIC = Path(__file__).parent / "dashboard" / "static"

DESCRIPTION = """Each organization runs its own API, acting with its own identities.

**Authentication**: mutual TLS. Present a client certificate issued by this organization's
Fabric CA: an admin identity (NodeOU `admin`) may read and write; an identity with the
`role=auditor` attribute may read and verify. Other orgs' identities get 403."""


def _error(
    status: int, error: str, detail: str, tx: str = "", endorsers: tuple[str, ...] = (), code: str = ""
) -> JSONResponse:
    body = ErrorBody(error=error, detail=detail, code=code, transactionId=tx, endorsers=list(endorsers))
    return JSONResponse(body.model_dump(), status_code=status)


def create_app(settings: ApiSettings, context: ApiContext | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = context is None
        app.state.context = open_context(settings) if own else context
        log.info("API of %s ready", app.state.context.org.msp_id)
        try:
            yield
        finally:
            await app.state.context.ledger.aclose()  # its channel lives on this event loop
            if own:
                app.state.context.close()

    app = FastAPI(
        title=f"fabricml API ({settings.org})",
        version="1",
        summary=summary,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(GuardMiddleware, settings=settings)
    _error_handlers(app)

    @app.get(
        "/metrics",
        tags=["operations"],
        response_class=Response,
        responses={**ERRORS, 200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
    )
    def metrics(_: ReaderDep) -> Response:
        """Prometheus metrics: requests by route and status, latency, ledger errors, rate limiting."""
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    for module in (whoami, network, identities, models, federation, attestations, tokens):
        app.include_router(module.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _error_handlers(app: FastAPI) -> None:
    """Every error answers with ErrorBody (422 with FastAPI's own validation shape)."""

    @app.exception_handler(LedgerError)
    async def ledger_error(request: Request, exc: LedgerError) -> JSONResponse:
        LEDGER_ERRORS.labels(str(exc.status)).inc()
        request.state.transaction_id = exc.transaction_id
        log.info("ledger refused: %s", exc.message, extra={"tx": exc.transaction_id, "status": exc.status})
        if exc.status == 422:
            # Same shape as FastAPI's own validation errors, as the schema documents for 422.
            return JSONResponse(
                {"detail": [{"loc": ["body"], "msg": exc.message, "type": "value_error"}]}, 422
            )
        return _error(exc.status, "LedgerError", exc.message, exc.transaction_id, exc.endorsers, exc.code)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, HTTPStatus(exc.status_code).phrase.replace(" ", ""), str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own shape (documented as HTTPValidationError), with inputs left out.
        errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error in %s %s", request.method, request.url.path)
        return _error(500, "InternalError", f"{type(exc).__name__}; see the API log")
