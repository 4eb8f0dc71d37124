"""Error responses every route documents, so the OpenAPI schema says what clients get."""

from __future__ import annotations

from typing import Any

from ..schemas import ErrorBody


def _body(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


ERRORS: dict[int | str, dict[str, Any]] = {
    400: _body("The body could not be parsed, or the CA refused an enrollment"),
    401: _body("No client certificate, or a revoked one"),
    403: _body("Another org's identity, no API role, or not an admin"),
    413: _body("Request body too large"),
    429: _body("Rate limit reached; see Retry-After"),
}
LEDGER_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    404: _body("No such record on the ledger"),
    409: _body("The ledger refused the transaction (with its transaction id)"),
    500: _body("The ledger's state is corrupt (INTERNAL), or the API failed"),
    502: _body("The ledger's answer did not have the shape this API reads"),
    503: _body("The ledger could not be reached"),
}
