"""The single-directory network's interfaces over a local consortium's sites, for code that
still asks for "the network": tools and lifecycle by organization, one process table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .binaries import Binaries
from .peercli import AdminTools
from .processes import ProcessRecord
from .topology import Organization, Topology

if TYPE_CHECKING:
    from .consortium import Consortium


class ConsortiumTools:
    """Each org's AdminTools, chosen by organization (what ChannelConfig asks for)."""

    def __init__(self, consortium: Consortium) -> None:
        self._c = consortium

    @property
    def topology(self) -> Topology:
        return self._c.topology

    @property
    def binaries(self) -> Binaries:
        return self._c.binaries

    @property
    def channel(self) -> str:
        return self._c.topology.channel

    def for_org(self, org: Organization) -> AdminTools:
        return self._c.site(org).tools


class ConsortiumLifecycle:
    def __init__(self, consortium: Consortium) -> None:
        self._c = consortium

    def committed(self, org: Organization) -> dict[str, Any] | None:
        return self._c.site(org).lifecycle.committed()


class MergedProcesses:
    """Every site's process records, by node name."""

    def __init__(self, consortium: Consortium) -> None:
        self._c = consortium

    def records(self) -> dict[str, ProcessRecord]:
        out: dict[str, ProcessRecord] = {}
        for s in self._c.sites.values():
            out.update(s.supervisor.table.records())
        return out

    def alive(self, name: str) -> bool:
        return any(s.supervisor.alive(name) for s in self._c.sites.values())
