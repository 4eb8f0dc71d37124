"""Process supervision for one site: its nodes, starting them until healthy, stopping them."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from .processes import ProcessTable, http_ok, wait_until

HEALTH_TIMEOUT = 60.0
KINDS = ("ca", "orderer", "peer", "chaincode", "revocations", "artifacts", "api")  # start order


class NetworkError(RuntimeError):
    """Bring-up or an operation failed; the message names the node and its log."""


@dataclass(frozen=True)
class Node:
    """One long-lived process of a site."""

    name: str
    kind: str  # one of KINDS
    org: str
    argv: list[str]
    env: dict[str, str]
    health_url: str | None = None  # an operations /healthz endpoint, or else
    health_ca: Path | None = None  # the CA of that endpoint's TLS certificate (https)
    listen: tuple[str, int] | None = None  # an address that accepts connections once the node is ready
    cwd: Path | None = None
    ready_file: Path | None = None  # or else a file the node writes once it is ready

    def healthy(self) -> bool:
        if self.ready_file is not None:
            return self.ready_file.exists()
        if self.health_url is not None:
            ctx = ssl.create_default_context(cafile=str(self.health_ca)) if self.health_ca else None
            return http_ok(self.health_url, context=ctx)
        return self.listen is not None and accepts_connections(*self.listen)


def accepts_connections(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


class Supervisor:
    """Starts a site's nodes (recording their pids in the site's process table) and stops them."""

    def __init__(self, table: ProcessTable, log: Callable[[str], Path], timeout: float = HEALTH_TIMEOUT):
        self.table = table
        self.log = log
        self.timeout = timeout

    def alive(self, name: str) -> bool:
        return self.table.alive(name)

    def start(self, nodes: Iterable[Node]) -> list[str]:
        """Start every node that is not running, then wait until each is healthy; returns the started."""
        todo = [n for n in nodes if not self.table.alive(n.name)]
        for n in todo:
            if n.ready_file is not None:
                n.ready_file.unlink(missing_ok=True)
            self.table.start(n.name, n.argv, n.env, self.log(n.name), cwd=n.cwd)
        for n in todo:
            self.wait_healthy(n)
        return [n.name for n in todo]

    def wait_healthy(self, n: Node) -> None:
        def ready() -> bool:
            if not self.table.alive(n.name):
                raise NetworkError(f"{n.name} exited during start-up; see its log: {self.log(n.name)}")
            return n.healthy()

        if not wait_until(ready, self.timeout):
            raise NetworkError(
                f"{n.name} was not healthy after {self.timeout:.0f}s; see its log: {self.log(n.name)}"
            )

    def restart(self, n: Node) -> None:
        self.table.stop(n.name)
        self.start([n])

    def stop(self, name: str) -> bool:
        return self.table.stop(name)

    def stop_all(self, nodes: Iterable[Node]) -> list[str]:
        """Stop clients of a node before the node (reverse start order), then anything left."""
        stopped = [n.name for n in reversed(list(nodes)) if self.table.stop(n.name)]
        return stopped + self.table.stop_all()

    def running(self) -> list[str]:
        return sorted(self.table.running())
