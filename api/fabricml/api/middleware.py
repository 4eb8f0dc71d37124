"""Guards every request before it reaches a handler: rate limit (per certificate and per
org), authentication, the upload role, cross-site writes, body size (uploads stream
through, counted; other bodies are read first); and after it: a structured log line and
Prometheus metrics."""

from __future__ import annotations

import hashlib
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

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, client: str, now: float) -> float:
        """0 if the request may go, else the seconds until it could."""
        tokens, last = self._buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if len(self._buckets) > 10_000:
            # A bucket that has refilled is the same as none: forgetting it changes nothing.
            self._buckets = {
                k: (t, at) for k, (t, at) in self._buckets.items() if t + (now - at) * self.rate < self.burst
            }
        if tokens < 1:
            self._buckets[client] = (tokens, now)
            return (1 - tokens) / self.rate
        self._buckets[client] = (tokens - 1, now)
        return 0.0


def client_certificate(scope: Scope) -> str | None:
    """The PEM client certificate of the TLS connection, if the client sent one."""
    chain = scope.get("extensions", {}).get("tls", {}).get("client_cert_chain") or []
    return str(chain[0]) if chain else None


def client_key(scope: Scope) -> str:
    """The client's certificate if it sent one, else its address."""
    pem = client_certificate(scope)
    if pem:
        return "cert:" + hashlib.sha256(pem.encode()).hexdigest()
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


Refusal = tuple[int, dict[str, Any], list[tuple[bytes, bytes]]]
AUTH_ERRORS = {401: "Unauthenticated", 403: "Forbidden", 503: "RevocationUnknown"}


def _too_large(limit: int) -> Refusal:
    body = {"error": "RequestTooLarge", "detail": f"request body over {limit} bytes"}
    return 413, body, [(b"connection", b"close")]


class GuardMiddleware:
    def __init__(self, app: ASGIApp, settings: ApiSettings) -> None:
        self.app = app
        self.settings = settings
        self.buckets = TokenBuckets(settings.rate_per_second, settings.rate_burst)
        # One org's certificates share a budget (this org's: one per API role), so minting more buys none.
        self.groups = TokenBuckets(settings.group_rate_per_second, settings.group_rate_burst)

    def _limit(self, scope: Scope) -> int:
        if _is_upload(scope):
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
                await _reply(send_logged, *refusal)
            elif _is_upload(scope):
                await self._stream(scope, receive, send_logged)
            else:
                messages = await self._read_body(scope, receive)
                if messages is None:
                    await _reply(send_logged, *_too_large(self._limit(scope)))
                    return
                await self.app(scope, _replay(messages, receive), send_logged)
        finally:
            self._record(scope, status_box[0], time.perf_counter() - started, request_id)

    async def _refuse(self, scope: Scope) -> Refusal | None:
        """A refusal decided from the request head alone, before any of its body is read."""
        limited = self._rate_limited(scope)
        if limited is not None:
            return limited
        # Every request is authenticated here, before its body is read or parsed.
        try:
            caller = scope["app"].state.context.authenticator.authenticate(client_certificate(scope))
        except AuthError as exc:
            return exc.status, {"error": AUTH_ERRORS[exc.status], "detail": exc.message}, []
        scope.setdefault("state", {})["caller"] = caller
        if _is_upload(scope) and not caller.can_write:
            # Refused before the body: a reader's upload would otherwise be received in full first.
            detail = f"{caller.subject} is an {caller.role}: read-only; uploading a model needs an org admin"
            return 403, {"error": "Forbidden", "detail": detail}, [(b"connection", b"close")]
        if scope["method"] not in SAFE_METHODS and _cross_site(scope):
            # A browser always names the page that sends a cross-site write; refuse those
            # (the client certificate would otherwise be sent along with them).
            return (
                403,
                {"error": "CrossSiteRequest", "detail": "writes must come from this API's own pages"},
                [],
            )
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self._limit(scope) + DRAIN_BYTES):
            # Far too large to read and drop: answer at once (the client may see the connection close).
            return _too_large(self._limit(scope))
        return None

    def _rate_limited(self, scope: Scope) -> Refusal | None:
        """429 once the certificate (or address), or its org (this org: its API role), is over budget."""
        now = time.monotonic()
        wait = self.buckets.take(client_key(scope), now)
        pem = client_certificate(scope)
        if not wait and pem:
            group = scope["app"].state.context.authenticator.group_of(pem)
            wait = self.groups.take(group, now)
        if not wait:
            return None
        RATE_LIMITED.inc()
        retry = str(max(1, round(wait)))
        return (
            429,
            {"error": "RateLimited", "detail": f"too many requests; retry in {retry}s"},
            [(b"retry-after", retry.encode())],
        )

    async def _stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass an upload through as it arrives (the multipart parser spools files to disk),
        counting its bytes: past the limit the app sees the client gone, the client a 413."""
        limit, size, over = self._limit(scope), [0], [False]

        async def counted() -> Message:
            message = await receive()
            if message["type"] == "http.request" and not over[0]:
                size[0] += len(message.get("body", b""))
                if size[0] > limit:
                    over[0] = True
                    await _drain(receive, message, DRAIN_BYTES)  # so that the client reads the 413
                    return {"type": "http.disconnect"}
            return message

        async def answer(message: Message) -> None:
            if not over[0]:
                await send(message)
            elif message["type"] == "http.response.start":  # the app's answer to a cut-off body
                await _reply(send, *_too_large(limit))

        await self.app(scope, counted, answer)

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


def _is_upload(scope: Scope) -> bool:
    return scope["method"] == "POST" and scope["path"] in UPLOAD_PATHS


def _cross_site(scope: Scope) -> bool:
    origin, host = _header(scope, b"origin"), _header(scope, b"host")
    fetch_site = _header(scope, b"sec-fetch-site")
    return (origin is not None and origin != f"https://{host}") or fetch_site in ("cross-site", "same-site")


async def _drain(receive: Receive, message: Message, most: int) -> None:
    """Read and drop the rest of a body, up to `most` bytes."""
    dropped = 0
    while message.get("more_body", False) and dropped <= most:
        message = await receive()
        if message["type"] != "http.request":
            return
        dropped += len(message.get("body", b""))


def _replay(messages: list[Message], receive: Receive) -> Receive:
    queue = list(messages)

    async def replay() -> Message:
        if queue:
            return queue.pop(0)
        return await receive()

    return replay
