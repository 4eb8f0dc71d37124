"""The API's listener: uvicorn's HTTP protocol behind our own accept loop.

uvicorn gives a TLS handshake 60 s, a request head no deadline at all, and answers 503
to everyone once `limit_concurrency` connections are open, so an outsider who opens
connections and never finishes a head locks every admin out. Here each handshake and
each request head has a deadline, and the ConnectionTable decides who holds a slot."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import socket
import ssl
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import uvicorn
from cryptography import x509
from uvicorn.main import STARTUP_FAILURE

from fabricml.gateway.identity import issued_by

from .admission import ConnectionLimits, ConnectionTable, Slot
from .tls import MutualTLSProtocol

log = logging.getLogger("fabricml.api")
# (group, certificate key) of a member certificate, None for none (or one not to trust now).
Classify = Callable[[bytes | None], tuple[str, str] | None]


def member_classifier(member_cas: Mapping[str, Path]) -> Classify:
    """Group a connection by the member CA that issued its certificate directly."""
    cas = {name: x509.load_pem_x509_certificate(p.read_bytes()) for name, p in member_cas.items()}

    def classify(der: bytes | None) -> tuple[str, str] | None:
        if not der:
            return None
        cert = x509.load_der_x509_certificate(der)
        for name, ca in cas.items():
            if issued_by(cert, ca):
                return name, hashlib.sha256(der).hexdigest()
        return None

    return classify


class GuardedProtocol(MutualTLSProtocol):
    """uvicorn's h11 protocol with request-head deadlines and a slot in the table."""

    def __init__(self, *args: Any, slot: Slot, guard: GuardedServer, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.slot, self.guard = slot, guard
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:  # after the TLS handshake
        super().connection_made(transport)
        self.slot.drop = transport.abort
        ssl_object = transport.get_extra_info("ssl_object")
        where = self.guard.classify(ssl_object.getpeercert(binary_form=True) if ssl_object else None)
        if where is not None:
            self.guard.table.authenticated(self.slot, *where)
        self._arm(self.guard.limits.head_seconds)

    def on_response_complete(self) -> None:
        answered = self.cycle
        super().on_response_complete()  # may already start a pipelined request
        self._arm(self.guard.limits.idle_seconds, answered)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self.guard.table.leave(self.slot)
        super().connection_lost(exc)

    def _arm(self, seconds: float, answered: Any = None) -> None:
        """Close the connection unless a new request head is complete within `seconds`."""
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_later(seconds, self._late, answered)

    def _late(self, answered: Any) -> None:
        if self.cycle is answered and not self.transport.is_closing():  # no new request since
            self.transport.abort()


def _closer(sock: socket.socket, handshake: asyncio.Task[None]) -> Callable[[], None]:
    def close() -> None:
        handshake.cancel()
        sock.close()  # a task cancelled before it ran never closes its socket itself

    return close


class _Listening:
    """What uvicorn's shutdown closes: our accept loop and its socket."""

    def __init__(self, listener: socket.socket, accepting: asyncio.Task[None]) -> None:
        self.listener, self.accepting = listener, accepting

    def close(self) -> None:
        self.accepting.cancel()
        self.listener.close()

    async def wait_closed(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self.accepting


class GuardedServer(uvicorn.Server):
    """uvicorn's server (lifespan, shutdown, signals) with the listener above."""

    def __init__(
        self, config: uvicorn.Config, tls: ssl.SSLContext, classify: Classify, limits: ConnectionLimits
    ) -> None:
        super().__init__(config)
        self.tls, self.classify, self.limits = tls, classify, limits
        self.table = ConnectionTable(limits)
        self._handshakes: set[asyncio.Task[None]] = set()

    def run(self, sockets: list[socket.socket] | None = None) -> None:
        """Serve until told to stop; exit with uvicorn's code 3 when the app never started
        (its lifespan failed, e.g. a model that may not be deployed), as `uvicorn.run` does."""
        super().run(sockets)
        if not self.started:
            raise SystemExit(STARTUP_FAILURE)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # the lifespan only: the listener is ours
        if self.should_exit:
            return
        # uvicorn says started before it returns; nobody may connect until our socket listens.
        self.started = False
        listener = socket.create_server((self.config.host, self.config.port), backlog=self.config.backlog)
        listener.setblocking(False)
        self.servers.append(_Listening(listener, asyncio.create_task(self._accept(listener))))  # type: ignore[arg-type]
        self.started = True

    async def _accept(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, address = await loop.sock_accept(listener)
            except OSError as exc:  # out of descriptors: make room, then go on accepting
                log.warning("accept failed: %s", exc)
                self.table.drop_oldest()
                await asyncio.sleep(0.05)
                continue
            # asyncio turns Nagle off only for sockets whose proto says TCP, and create_server's
            # say 0: without this every answer in two writes waits for a delayed ACK (~40 ms).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            slot = Slot(sock.close)
            task = asyncio.create_task(self._handshake(sock, slot))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)
            slot.drop = _closer(sock, task)  # until the handshake is done; then the transport's abort
            self.table.arrive(slot, address[0])

    async def _handshake(self, sock: socket.socket, slot: Slot) -> None:
        loop = asyncio.get_running_loop()
        seconds = self.limits.handshake_seconds
        try:
            await asyncio.wait_for(
                loop.connect_accepted_socket(
                    lambda: self._protocol(slot), sock, ssl=self.tls, ssl_handshake_timeout=seconds
                ),
                seconds + 1,
            )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            log.debug("no TLS session: %s", exc)
            self.table.leave(slot)
            sock.close()

    def _protocol(self, slot: Slot) -> GuardedProtocol:
        return GuardedProtocol(
            config=self.config, server_state=self.server_state, app_state=self.lifespan.state, slot=slot,
            guard=self,
        )  # fmt: skip
