"""Clients that hold an artifact server's connections and do as little as they can: idle
TCP without TLS, half a TLS handshake, a request head one byte a second (with a member
certificate of a dishonest org), a large body read a few hundred bytes a second. When the
server drops one, it comes back. Run: python -m tests.registry.slow_clients --help"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import ssl
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from tests.registry.store_harness import ORGS, Pki

KINDS = ("idle", "half_handshake", "slow_head", "slow_reader")
Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass
class Held:
    open: int = 0
    peak: int = 0
    connections: int = 0
    dropped_by_server: int = 0


def client_hello(ctx: ssl.SSLContext) -> bytes:
    """The first flight of a real TLS handshake, as bytes to send (or half of them)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


class SlowClients:
    def __init__(self, port: int, pki: Pki, blob: str, as_org: str) -> None:
        self.port, self.blob, self.held = port, blob, Held()
        self.member = ssl.create_default_context()
        for org in ORGS:
            self.member.load_verify_locations(cafile=str(pki.ca(org)))
        self.member.load_cert_chain(*pki.identity(as_org))
        self.hello = client_hello(self.member)

    async def _connect(self, tls: bool) -> Streams:
        return await asyncio.open_connection(
            "127.0.0.1", self.port, ssl=self.member if tls else None, limit=1024
        )

    async def idle(self) -> Streams:
        r, w = await self._connect(False)
        return r, w

    async def half_handshake(self) -> Streams:
        r, w = await self._connect(False)
        w.write(self.hello[: len(self.hello) // 2])
        return r, w

    async def slow_head(self) -> Streams:
        r, w = await self._connect(True)
        w.write(f"GET /v1/blobs/{self.blob} HTTP/1.1\r\nHost: store\r\n".encode())
        return r, w

    async def slow_reader(self) -> Streams:
        r, w = await self._connect(True)
        w.write(f"GET /v1/blobs/{self.blob} HTTP/1.1\r\nHost: store\r\n\r\n".encode())
        return r, w

    async def hold(self, kind: str, until: float) -> None:
        opener: Callable[[], Awaitable[Streams]] = getattr(self, kind)
        while time.monotonic() < until:
            try:
                r, w = await opener()
            except OSError:
                await asyncio.sleep(0.5)
                continue
            self.held.open += 1
            self.held.connections += 1
            self.held.peak = max(self.held.peak, self.held.open)
            try:
                await asyncio.wait_for(self._dawdle_loop(kind, r, w), max(0.1, until - time.monotonic()))
                self.held.dropped_by_server += 1
            except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
                self.held.dropped_by_server += 1
            except TimeoutError:
                pass
            finally:
                self.held.open -= 1
                w.transport.abort()
            await asyncio.sleep(1.0)  # an attacker that comes back, without burning the CPU

    async def _dawdle_loop(self, kind: str, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        """Until the server gives up on this connection."""
        while True:
            if kind == "slow_head":
                w.write(b"X")
                await w.drain()
            if kind == "slow_reader":
                chunk = await r.read(256)
                await asyncio.sleep(1.0)
            else:
                try:
                    chunk = await asyncio.wait_for(r.read(1), 1.0)
                except TimeoutError:
                    continue
            if not chunk:
                return


async def run(args: argparse.Namespace) -> Held:
    clients = SlowClients(args.port, Pki(args.pki), args.blob, args.org)
    until = time.monotonic() + args.seconds
    kinds = args.kinds.split(",")
    tasks = [asyncio.create_task(clients.hold(kinds[i % len(kinds)], until)) for i in range(args.count)]

    async def announce() -> None:
        while clients.held.connections < args.count and time.monotonic() < until:
            await asyncio.sleep(0.05)
        print(json.dumps({"ready": clients.held.open}), flush=True)  # each has connected once

    await asyncio.gather(announce(), *tasks)
    return clients.held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pki", type=Path, required=True)
    parser.add_argument("--blob", required=True, help="digest of a large blob for the slow readers")
    parser.add_argument("--org", default="org2", help="the dishonest member org whose identity they use")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated, of {', '.join(KINDS)}")
    held = asyncio.run(run(parser.parse_args()))
    print(json.dumps(asdict(held)), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
