"""The org admin API under an outsider's idle connections (review finding R2).

uvicorn answers 503 to everyone once limit_concurrency (512) connections are open, and it
has no deadline for a request head, so connections without any certificate (the TLS
handshake lets them in: the client certificate is optional, for a readable 401) that
never finish their head lock every admin out for as long as they are held."""

from __future__ import annotations

import asyncio
import ssl

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

    async def attack() -> tuple[int, list[int]]:
        writers = await _hold(port, outsider, HELD)
        await asyncio.sleep(20)  # longer than any deadline a request head should get
        try:
            with api_client(network, "org1", identity_files(network, "org1", "admin")) as admin:
                answers = [await asyncio.to_thread(admin.get, "/api/v1/whoami") for _ in range(3)]
        finally:
            for w in writers:
                w.close()
        return len(writers), [a.status_code for a in answers]

    held, statuses = asyncio.run(attack())
    assert held >= 500, f"the outsider could open only {held} connections"
    assert statuses == [200, 200, 200], f"org1's admin got {statuses} while an outsider held {held}"
