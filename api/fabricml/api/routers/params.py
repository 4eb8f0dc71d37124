"""Path parameters the routes and the dashboard's pages share, each checked against the
ledger's identifier rules (fabricml.contracts.identifiers) before a handler runs."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from fabricml.contracts import identifiers as ids

LedgerId = Annotated[str, Path(pattern=ids.LEDGER_ID_PATTERN)]  # a task, a service's MSP ID or subject
ModelName = Annotated[str, Path(pattern=ids.MODEL_NAME_PATTERN, description="Model name")]
ModelVersion = Annotated[str, Path(pattern=ids.MODEL_VERSION_PATTERN, description="Model version")]
