"""For tests: a coalition of agents (threads of one process) that forge their updates
together with an attack of fabricml.federation.attacks. Commitments come before any
update is published, so a coalition knows only its own members' honest updates when it
commits: each member hands in its honestly trained update and waits until every member
of the round did, then commits the coalition's forged update instead. For IPM the
coalition's own mean stands in for the honest mean it cannot see."""

from __future__ import annotations

import threading
from collections.abc import Collection

from .attacks import Coalition
from .fixedpoint import Update


class CoalitionLink:
    def __init__(
        self, attack: str, members: Collection[str], participants: int, timeout: float = 600
    ) -> None:
        self.coalition = Coalition(attack, frozenset(members), participants)
        self.timeout = timeout
        self._honest: dict[int, dict[str, Update]] = {}
        self._forged: dict[int, dict[str, Update]] = {}
        self._changed = threading.Condition()

    def forge(self, key: str, round_: int, honest: Update) -> Update:
        """This member's forged update for the round, once every member handed in its own."""
        with self._changed:
            self._honest.setdefault(round_, {})[key] = honest
            self._changed.notify_all()
            done = self._changed.wait_for(lambda: self._ready(round_), self.timeout)
            if not done:
                raise TimeoutError(f"round {round_}: the coalition's other members never trained")
            if round_ not in self._forged:
                self._forged[round_] = self._forge(round_)
            return self._forged[round_][key]

    def _ready(self, round_: int) -> bool:
        return round_ in self._forged or set(self._honest.get(round_, {})) >= self.coalition.members

    def _forge(self, round_: int) -> dict[str, Update]:
        own = self._honest[round_]
        # What the coalition knows: its own updates, and the same as its estimate of the
        # honest ones (under another name, which the forgery treats as not a member's).
        known = {**own, **{f"{k}~estimate": u for k, u in own.items()}}
        return self.coalition.forge(round_, known)
