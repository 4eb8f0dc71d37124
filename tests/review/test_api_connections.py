"""The org admin API under an outsider's idle connections (review finding R2).

uvicorn answers 503 to everyone once limit_concurrency (512) connections are open, and it
has no deadline for a request head, so connections without any certificate (the TLS
handshake lets them in: the client certificate is optional, for a readable 401) that
never finish their head lock every admin out for as long as they are held."""

from __future__ import annotations

import asyncio
import ssl
import time

import httpx

from fabricml.network.network import Network
from fabricml.network.topology import HOST

from .conftest import api_client, client_context, identity_files

HELD = 600


async def _hold(port: int, ctx: ssl.SSLContext, n: int) -> list[asyncio.StreamWriter]:
    writers: list[asyncio.StreamWriter] = []
    for start in range(0, n, 50):
        opened = await asyncio.gather(
            *(asyncio.open_connection(HOST, port, ssl=ctx) for _ in range(start, min(n, start + 50))),
            return_exceptions=True,
        )
        for item in opened:
            if isinstance(item, tuple):
                item[1].write(b"GET /api/v1/whoami HTTP/1.1\r\nHost: x\r\n")  # a head never finished
                writers.append(item[1])
    return writers


def test_an_outsider_holding_idle_connections_does_not_lock_the_admin_out(network: Network) -> None:
    port = network.topology.org("org1").api_port
    outsider = client_context(network, "org1", None)  # no client certificate at all

    async def admin_calls(admin: httpx.Client) -> list[tuple[int, float]]:
        answers = []
        for _ in range(3):
            started = time.monotonic()
            r = await asyncio.to_thread(admin.get, "/api/v1/whoami")
            answers.append((r.status_code, time.monotonic() - started))
        return answers

    async def attack() -> tuple[int, list[tuple[int, float]], list[tuple[int, float]]]:
        writers = await _hold(port, outsider, HELD)
        try:
            with api_client(network, "org1", identity_files(network, "org1", "admin")) as admin:
                at_once = await admin_calls(admin)  # while every head is still held
            await asyncio.sleep(20)  # longer than any deadline a request head should get
            with api_client(network, "org1", identity_files(network, "org1", "admin")) as admin:
                later = await admin_calls(admin)
        finally:
            for w in writers:
                w.close()
        return len(writers), at_once, later

    held, at_once, later = asyncio.run(attack())
    print(f"outsider held {held} connections; admin at once {at_once}, after 20 s {later}")
    assert held >= 500, f"the outsider could open only {held} connections"
    for answers in (at_once, later):
        statuses = [status for status, _ in answers]
        assert statuses == [200, 200, 200], f"org1's admin got {statuses} while an outsider held {held}"
        assert max(seconds for _, seconds in answers) < 5, f"org1's admin waited: {answers}"
