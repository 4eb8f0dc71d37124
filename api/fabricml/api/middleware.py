"""Guards every request before it reaches a handler: body size, rate limit, cross-site
writes; and after it: a structured log line and Prometheus metrics."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .auth import AuthError
from .metrics import LATENCY, RATE_LIMITED, REQUESTS
from .settings import ApiSettings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("fabricml.api.access")
UPLOAD_PATHS = ("/api/v1/models",)
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
DRAIN_BYTES = 8 << 20  # an oversized body up to this much more is read and dropped before the 413


class TokenBuckets:
    """Per-client token buckets: `rate` requests a second, `burst` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, client: str, now: float) -> float:
        """0 if the request may go, else the seconds until it could."""
        tokens, last = self._buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if len(self._buckets) > 10_000:
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60}
        if tokens < 1:
            self._buckets[client] = (tokens, now)
            return (1 - tokens) / self.rate
        self._buckets[client] = (tokens - 1, now)
        return 0.0


def client_key(scope: Scope) -> str:
    """The client's certificate if it sent one, else its address."""
    chain = scope.get("extensions", {}).get("tls", {}).get("client_cert_chain") or []
    if chain:
        return "cert:" + str(hash(chain[0]))
    client = scope.get("client") or ("?", 0)
    return f"addr:{client[0]}"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


async def _reply(send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> None:
    raw = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(raw)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": raw})


class GuardMiddleware:
    def __init__(self, app: ASGIApp, settings: ApiSettings) -> None:
        self.app = app
        self.settings = settings
        self.buckets = TokenBuckets(settings.rate_per_second, settings.rate_burst)

    def _limit(self, scope: Scope) -> int:
        if scope["method"] == "POST" and scope["path"] in UPLOAD_PATHS:
            return self.settings.max_upload_bytes
        return self.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = uuid.uuid4().hex[:16]
        status_box = [500]

        async def send_logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_box[0] = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            refusal = await self._refuse(scope)
            if refusal is not None:
                status, body, headers = refusal
                await _reply(send_logged, status, body, headers)
                return
            messages = await self._read_body(scope, receive)
            if messages is None:
                limit = self._limit(scope)
                await _reply(
                    send_logged,
                    413,
                    {"error": "RequestTooLarge", "detail": f"request body over {limit} bytes"},
                    [],
                )
                return
            await self.app(scope, _replay(messages, receive), send_logged)
        finally:
            self._record(scope, status_box[0], time.perf_counter() - started, request_id)

    async def _refuse(self, scope: Scope) -> tuple[int, dict[str, Any], list[tuple[bytes, bytes]]] | None:
        wait = self.buckets.take(client_key(scope), time.monotonic())
        if wait > 0:
            RATE_LIMITED.inc()
            retry = str(max(1, round(wait)))
            return (
                429,
                {"error": "RateLimited", "detail": f"too many requests; retry in {retry}s"},
                [(b"retry-after", retry.encode())],
            )
        # Every request is authenticated here, before its body is read or parsed.
        chain = scope.get("extensions", {}).get("tls", {}).get("client_cert_chain") or []
        try:
            caller = scope["app"].state.context.authenticator.authenticate(chain[0] if chain else None)
        except AuthError as exc:
            kind = "Unauthenticated" if exc.status == 401 else "Forbidden"
            return exc.status, {"error": kind, "detail": exc.message}, []
        scope.setdefault("state", {})["caller"] = caller
        if scope["method"] not in SAFE_METHODS:
            # A browser always names the page that sends a cross-site write; refuse those
            # (the client certificate would otherwise be sent along with them).
            origin = _header(scope, b"origin")
            host = _header(scope, b"host")
            if (origin is not None and origin != f"https://{host}") or _header(scope, b"sec-fetch-site") in (
                "cross-site",
                "same-site",
            ):
                return (
                    403,
                    {"error": "CrossSiteRequest", "detail": "writes must come from this API's own pages"},
                    [],
                )
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self._limit(scope) + DRAIN_BYTES):
            # Far too large to read and drop: answer at once (the client may see the connection close).
            return (
                413,
                {"error": "RequestTooLarge", "detail": f"request body over {self._limit(scope)} bytes"},
                [],
            )
        return None

    async def _read_body(self, scope: Scope, receive: Receive) -> list[Message] | None:
        """Every body message, or None once the body passes the limit (nothing is stored)."""
        limit, size = self._limit(scope), 0
        messages: list[Message] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return [*messages, message]
            size += len(message.get("body", b""))
            if size <= limit:
                messages.append(message)
            elif size > limit + DRAIN_BYTES:
                return None
            if not message.get("more_body", False):
                # Over the limit: the rest was read and dropped, so the client reads our 413.
                return messages if size <= limit else None

    def _record(self, scope: Scope, status: int, seconds: float, request_id: str) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        REQUESTS.labels(scope["method"], template, str(status)).inc()
        LATENCY.labels(scope["method"], template).observe(seconds)
        caller = scope.get("state", {}).get("caller")
        log.info(
            "%s %s %d",
            scope["method"],
            scope["path"],
            status,
            extra={
                "request_id": request_id,
                "status": status,
                "ms": round(seconds * 1000, 1),
                "client": getattr(caller, "subject", None),
                "role": getattr(caller, "role", None),
                "tx": scope.get("state", {}).get("transaction_id"),
            },
        )


def _replay(messages: list[Message], receive: Receive) -> Receive:
    queue = list(messages)

    async def replay() -> Message:
        if queue:
            return queue.pop(0)
        return await receive()

    return replay
