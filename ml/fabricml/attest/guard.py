"""Guards the inference service's HTTP API: who may call which route, and the body limit,
counted as the body arrives (chunked bodies too), before any route parses it.

Callers authenticate by the client certificate of mutual TLS (the ASGI `tls` extension):
- open: `POST /v1/predict`, `/healthz`, `/metrics`. Answers are the service's purpose, for
  whoever the org lets reach it (docs/attestation.md); each request is bounded in bytes and
  rows, and receipts are anchored in batches, so a flood of predictions costs the ledger at
  most one transaction per `anchor_ms`, whatever its rate.
- this org's admin (NodeOU admin of its own CA): `/v1/claims/...`, which makes the org's
  inference identity vote on a claim on the ledger.
- any member org's identity: everything else, notably `/v1/receipts/{n}/proof` (receipts
  carry unsalted digests of each client's input and output).
No certificate: 401; a certificate that may not: 403; revocations unknown: 503."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from fabricml.gateway.identity import issued_by
from fabricml.registry.crl import RevocationFiles, RevocationUnknown

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = ("/v1/predict", "/healthz", "/metrics")
ADMIN_PREFIX = "/v1/claims"
DRAIN_BYTES = 1 << 20  # an oversized body up to this much more is read and dropped: the client sees the 413


class Refused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


@dataclass(frozen=True)
class Callers:
    """The CAs whose identities may call: this org's, and every member's (own included)."""

    own_cas: Sequence[x509.Certificate] = ()  # this org's CA
    member_cas: Sequence[x509.Certificate] = ()
    revocations: RevocationFiles | None = None  # one list per member CA

    @classmethod
    def load(cls, own_ca: Path | None, member_cas: Sequence[Path], crls: Sequence[Path]) -> Callers:
        members = [x509.load_pem_x509_certificate(Path(p).read_bytes()) for p in member_cas]
        own = [x509.load_pem_x509_certificate(own_ca.read_bytes())] if own_ca else []
        return cls(own, members, RevocationFiles(crls, members) if crls else None)

    def check(self, path: str, pem: str | None) -> None:
        """Raises Refused unless this caller may call `path`."""
        if path in OPEN_PATHS:
            return
        admin = path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")
        needs = "an admin certificate of this org's CA" if admin else "a member org's certificate"
        if not pem:
            raise Refused(401, f"{path} needs mutual TLS with {needs}")
        cert = x509.load_pem_x509_certificate(pem.encode())
        if not any(issued_by(cert, ca) for ca in (self.own_cas if admin else self.member_cas)):
            raise Refused(403, f"{path} needs {needs}")
        if admin and "admin" not in _units(cert):
            raise Refused(403, f"{path} needs {needs}; this one is not an admin's")
        if self.revocations is None:
            raise Refused(503, "this service was started without its members' revocation lists")
        try:
            revoked = self.revocations.is_revoked(cert)
        except RevocationUnknown as exc:
            raise Refused(503, f"cannot check revocations now: {exc}") from None
        if revoked:
            raise Refused(401, "the certificate is revoked")


def _units(cert: x509.Certificate) -> list[str]:
    return [str(a.value) for a in cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATIONAL_UNIT_NAME)]


class ServiceGuard:
    """ASGI middleware: the caller check, then the whole body (at most `max_body_bytes`)."""

    def __init__(self, app: ASGIApp, callers: Callers, max_body_bytes: int) -> None:
        self.app, self.callers, self.max_body_bytes = app, callers, max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chain = scope.get("extensions", {}).get("tls", {}).get("client_cert_chain") or []
        try:
            self.callers.check(scope["path"], chain[0] if chain else None)
            messages = await self._body(scope, receive)
        except Refused as exc:
            await _answer(send, exc.status, exc.detail)
            return
        await self.app(scope, _replay(messages, receive), send)

    async def _body(self, scope: Scope, receive: Receive) -> list[Message]:
        length = dict(scope.get("headers", [])).get(b"content-length")
        too_large = Refused(413, f"request body must be at most {self.max_body_bytes} bytes")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            raise too_large
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return [*messages, message]
            size += len(message.get("body", b""))
            if size > self.max_body_bytes + DRAIN_BYTES:
                raise too_large
            if size <= self.max_body_bytes:
                messages.append(message)
            if not message.get("more_body", False):
                if size > self.max_body_bytes:
                    raise too_large
                return messages


async def _answer(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 413:
        headers.append((b"connection", b"close"))  # the rest of the body is not read
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _replay(messages: list[Message], receive: Receive) -> Receive:
    queue = list(messages)

    async def replay() -> Message:
        return queue.pop(0) if queue else await receive()

    return replay
