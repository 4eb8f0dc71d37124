"""Prometheus metrics of the API process, on its own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry()
REQUESTS = Counter(
    "fabricml_api_requests",
    "HTTP requests by route and status",
    ["method", "route", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "fabricml_api_request_seconds",
    "Time to answer a request",
    ["method", "route"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
LEDGER_ERRORS = Counter(
    "fabricml_api_ledger_errors",
    "Ledger calls refused or failed, by HTTP status",
    ["status"],
    registry=REGISTRY,
)
RATE_LIMITED = Counter("fabricml_api_rate_limited", "Requests refused by the rate limit", registry=REGISTRY)
