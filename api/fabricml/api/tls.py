"""Mutual TLS for uvicorn: the server context, and the client certificate in the ASGI scope.

uvicorn does not pass the peer certificate to the application, so this protocol adds it
as the ASGI TLS extension (`scope["extensions"]["tls"]["client_cert_chain"]`)."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


def server_context(cert: Path, key: Path, client_cas: list[Path]) -> ssl.SSLContext:
    """TLS 1.2+; a client certificate is asked for and, when sent, must chain to a member CA."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    for ca in client_cas:
        ctx.load_verify_locations(cafile=str(ca))
    # Optional so that a request without a certificate gets a readable 401, not a reset.
    ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


class MutualTLSProtocol(H11Protocol):
    """h11 protocol that hands the verified client certificate to the app."""

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        chain = [ssl.DER_cert_to_PEM_cert(der)] if der else []
        inner: ASGIApp = self.app

        async def app(scope: Scope, receive: Any, send: Any) -> None:
            scope.setdefault("extensions", {})["tls"] = {"client_cert_chain": chain}
            await inner(scope, receive, send)

        self.app = app
