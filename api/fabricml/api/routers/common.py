"""Error responses every route documents, so the OpenAPI schema says what clients get."""

from __future__ import annotations

from typing import Any

from ..schemas import ErrorBody

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The body could not be parsed, or the CA refused an enrollment"},
    401: {"model": ErrorBody, "description": "No client certificate, or a revoked one"},
    403: {"model": ErrorBody, "description": "Another org's identity, no API role, or not an admin"},
    413: {"model": ErrorBody, "description": "Request body too large"},
    429: {"model": ErrorBody, "description": "Rate limit reached; see Retry-After"},
}
LEDGER_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The body could not be parsed, or the CA refused an enrollment"},
    **ERRORS,
    404: {"model": ErrorBody, "description": "No such record on the ledger"},
    409: {"model": ErrorBody, "description": "The ledger refused the transaction (with its transaction id)"},
    500: {"model": ErrorBody, "description": "The ledger's state is corrupt (INTERNAL), or the API failed"},
    503: {"model": ErrorBody, "description": "The ledger could not be reached"},
}
