"""Who holds the API's connections, so that no outsider and no other org crowds out this org's admins.

Connections that have shown no member certificate yet (in their TLS handshake, or
without one) share one pool, capped per address and in all; under pressure the oldest
is dropped, so a newcomer always gets its turn. A connection with a member certificate
moves to its group's slots (another org: one group; this org: one per API role, so the
admins have their own), capped per certificate; a full group drops the oldest connection
of its busiest certificate."""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("fabricml.api.admission")


@dataclass(frozen=True)
class ConnectionLimits:
    handshake_seconds: float = 5.0  # a TLS handshake must be done by then
    head_seconds: float = 10.0  # a connection's first request head must be complete by then ...
    idle_seconds: float = 15.0  # ... and each next one, after the previous answer
    unauthenticated: int = 512  # connections without a member certificate (yet), in all ...
    unauthenticated_per_address: int = 256  # ... and from one IP address
    per_group: int = 128  # connections of one org (this org: of one API role) ...
    per_certificate: int = 32  # ... and of one certificate


class Slot:
    """One connection's place in the table; `drop` closes the connection."""

    def __init__(self, drop: Callable[[], None]) -> None:
        self.drop = drop


class ConnectionTable:
    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.unauthenticated: OrderedDict[Slot, str] = OrderedDict()  # slot -> address, oldest first
        self._per_address: Counter[str] = Counter()
        self.groups: dict[str, OrderedDict[Slot, str]] = {}  # group -> slot -> certificate
        self._group_of: dict[Slot, str] = {}

    def arrive(self, slot: Slot, address: str) -> None:
        """A new connection, before its TLS handshake."""
        self.unauthenticated[slot] = address
        self._per_address[address] += 1
        if self._per_address[address] > self.limits.unauthenticated_per_address:
            self._drop(next(s for s, a in self.unauthenticated.items() if a == address), address)
        if len(self.unauthenticated) > self.limits.unauthenticated:
            oldest = next(iter(self.unauthenticated))
            self._drop(oldest, "everyone without a certificate")

    def authenticated(self, slot: Slot, group: str, certificate: str) -> None:
        """Its handshake showed a member certificate: it leaves the shared pool for its group."""
        self._leave_pool(slot)
        members = self.groups.setdefault(group, OrderedDict())
        members[slot] = certificate
        self._group_of[slot] = group
        if sum(1 for c in members.values() if c == certificate) > self.limits.per_certificate:
            self._drop(next(s for s, c in members.items() if c == certificate), f"a certificate of {group}")
        if len(members) > self.limits.per_group:
            busiest = Counter(members.values()).most_common(1)[0][0]
            self._drop(next(s for s, c in members.items() if c == busiest), group)

    def leave(self, slot: Slot) -> None:
        self._leave_pool(slot)
        group = self._group_of.pop(slot, None)
        if group is not None:
            members = self.groups[group]
            members.pop(slot, None)
            if not members:
                del self.groups[group]

    def drop_oldest(self) -> None:
        """Make room (e.g. when out of file descriptors) at the expense of the shared pool."""
        if self.unauthenticated:
            self._drop(next(iter(self.unauthenticated)), "everyone without a certificate")

    def _leave_pool(self, slot: Slot) -> None:
        address = self.unauthenticated.pop(slot, None)
        if address is not None:
            self._per_address[address] -= 1
            if not self._per_address[address]:
                del self._per_address[address]

    def _drop(self, slot: Slot, whose: str) -> None:
        log.info("dropping the oldest connection of %s: too many open", whose)
        self.leave(slot)
        slot.drop()
