"""One org's verifier of a Flower-run task: it trusts neither the Flower server nor any
other org. Round by round it gathers the committed updates from the members' stores,
recomputes the outcome by the task's rule, posts its own assessment (unless its org
already posted one, e.g. through the Flower server it runs, which it then checks),
settles the round and registers the round model fed-<task>@r<n> when its org is the
registrar. Restarted, it recomputes every earlier round from the committed bytes, so
it keeps no state of its own."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from fabricml.contracts.federation import AggregatePost, RoundResult, RoundState, Task
from fabricml.federation.agent_state import RoundModel
from fabricml.federation.evidence import History
from fabricml.federation.fixedpoint import Update
from fabricml.federation.round_ledger import round_state
from fabricml.federation.round_models import round_ref
from fabricml.federation.round_post import RoundPost
from fabricml.gateway import CommitError, GatewayError, RefusalCode, is_refusal

from .assessment import assess_round
from .collect import gather, round_commitments
from .initial import InitialModel, load_initial
from .links import Links
from .rounds import Clock, NotYet, wait_for


@dataclass(frozen=True)
class Verdict:
    """How one round ended, as this org saw it."""

    round: int
    computed: str  # the digest this org recomputed
    agreed: str  # the quorum's ("" if none)
    status: str  # FINALIZED, CLOSED, or "" if not settled by this verifier's look
    outvoted: tuple[str, ...] = ()  # orgs whose post differs from the quorum's
    own_post_matches: bool = (
        True  # False: this org's post (e.g. by its Flower server) is not what it computed
    )


@dataclass
class Progress:
    """What the verifier carries from round to round (rebuilt from round 1 on a restart)."""

    global_model: Update
    previous: Update | None = None
    history: History = field(default_factory=History)
    parent: str = ""  # lineage parent of the next finalized round's model
    pending: list[tuple[RoundModel, Update]] = field(default_factory=list)  # to register


class Verifier:
    def __init__(
        self,
        links: Links,
        task_id: str,
        post: bool = True,
        clock: Clock | None = None,
        log: Callable[[str], None] = print,
        patience: float = 3600.0,
        grace: float = 10.0,
    ) -> None:
        self.links, self.task_id, self.post, self.log = links, task_id, post, log
        self.clock, self.patience, self.grace = clock or Clock(), patience, grace
        self.verdicts: list[Verdict] = []
        self.stop = threading.Event()
        self._config: dict[str, object] = {}

    def run(self, last_round: int = 0) -> list[Verdict]:
        """Verify rounds 1.. until the task ends, `last_round` is done, or stop is set."""
        task = self.links.federation.get_task(self.task_id)
        initial = load_initial(self.links.store, task.initial_model)
        self._config = initial.config
        progress = Progress(initial.weights, parent=task.initial_model)
        for r in range(1, (last_round or task.rounds) + 1):
            state = self._closed(task, r)
            if state is None or self.stop.is_set():
                break
            self._round(task, initial, state, progress)
        return self.verdicts

    def _closed(self, task: Task, round_: int) -> RoundState | None:
        """The round's state once its commitments are closed; None when stopped."""

        def look() -> RoundState | None:
            if self.stop.is_set():
                raise _Stopped
            return round_state(self.links.federation, task.id, round_)

        try:
            return wait_for(
                look, lambda s: s.commits_closed, f"round {round_}'s commitments", self.patience, self.clock
            )
        except _Stopped:
            return None

    def _round(self, task: Task, initial: InitialModel, state: RoundState, p: Progress) -> None:
        ledger, r = self.links.federation, state.round
        commitments = round_commitments(ledger.commitments(task.id, r), state)
        found = gather(
            task, state, commitments, initial.shapes, self.links.store, clock=self.clock, log=self.log
        )
        mine = assess_round(r, task.rule, task.min_participants, p.global_model, p.previous, found, p.history)
        self._post(task, mine)
        state = wait_for(
            lambda: round_state(ledger, task.id, r) or state,
            lambda s: bool(s.agreed_digest) or s.settleable or s.phase == "SETTLED",
            f"a quorum on round {r}", self.patience, self.clock,
        )  # fmt: skip
        self._let_everyone_post(task, state)
        matches = self._check_own(task, mine)
        result = self._settle(task, r)
        agreed = result.aggregate_digest if result else state.agreed_digest
        outvoted = tuple(result.disagreeing) if result else ()
        self.verdicts.append(
            Verdict(r, mine.digest, agreed, result.status if result else "", outvoted, matches)
        )
        self.log(self._describe(self.verdicts[-1]))
        if agreed and agreed != mine.digest:
            self.stop.set()  # the quorum holds a model this org cannot reproduce: stop and report
        elif agreed and (result is None or result.status == "FINALIZED") and mine.changed:
            self._adopt(task, mine, result, p)
        self._register(p)

    def _post(self, task: Task, mine: RoundPost) -> None:
        """Post this org's assessment unless the org already posted one (e.g. its Flower server)."""
        ledger, r = self.links.federation, mine.round
        if not self.post or self._ours(task, r) is not None:
            return
        try:
            ledger.post_aggregate(task.id, r, mine.digest, mine.scores, mine.flagged, mine.missing)
        except GatewayError as exc:  # another post of this org got in first, or the round is over
            if not is_refusal(exc, RefusalCode.CONFLICT, RefusalCode.WRONG_PHASE):
                raise

    def _ours(self, task: Task, round_: int) -> AggregatePost | None:
        posts = self.links.federation.aggregates(task.id, round_)
        return next((a for a in posts if a.msp_id == self.links.msp_id), None)

    def _check_own(self, task: Task, mine: RoundPost) -> bool:
        """Whether what was posted for this org (if anything) is what this org recomputed."""
        a = self._ours(task, mine.round)
        if a is None:
            return True
        same = mine.same_as(a.digest, dict(a.scores), list(a.flagged), list(a.missing))
        if not same:
            self.log(
                f"round {mine.round}: {self.links.msp_id}'s post on the ledger ({a.digest[:12]}) is NOT what "
                f"this org recomputed ({mine.digest[:12]}): who posted for {self.links.msp_id} lied or erred"
            )
        return same

    def _let_everyone_post(self, task: Task, state: RoundState) -> None:
        """Settle once every org posted, or `grace` seconds after the quorum: a late
        (e.g. dishonest) post is then on the record as disagreeing, not refused."""
        orgs = {k.split("/", 1)[0] for k in state.participants}
        with contextlib.suppress(NotYet):
            wait_for(
                lambda: round_state(self.links.federation, task.id, state.round),
                lambda s: set(s.posted) >= orgs or s.phase == "SETTLED",
                f"every org's post of round {state.round}", self.grace, self.clock,
            )  # fmt: skip

    def _settle(self, task: Task, round_: int) -> RoundResult | None:
        """Settle the round (anyone may; a settled round answers with its record)."""
        ledger = self.links.federation
        try:
            return ledger.settle(task.id, round_)
        except CommitError:  # another org's Settle won the race
            return ledger.get_round(task.id, round_)
        except GatewayError as exc:
            if is_refusal(exc, RefusalCode.WRONG_PHASE):
                return None  # e.g. the round before is not settled yet
            raise

    def _adopt(self, task: Task, mine: RoundPost, result: RoundResult | None, p: Progress) -> None:
        p.previous, p.global_model, p.history = p.global_model, mine.new_global, mine.history
        if result is not None and result.agreeing and min(result.agreeing) == self.links.msp_id:
            datasets = {k: d for k, d in mine.datasets.items() if k in mine.scores}
            entry = RoundModel(mine.round, task.rule, datasets, mine.digest, result.tx_id, p.parent, {})
            p.pending.append((entry, mine.new_global))
        p.parent = round_ref(task.id, mine.round)

    def _register(self, p: Progress) -> None:
        """Register the round models this org owes, oldest first (a parent before its child)."""
        registrar = self.links.registrar
        while p.pending and registrar is not None:
            entry, weights = p.pending[0]
            if not registrar.register(entry, weights, self._config):
                return  # the parent is not registered yet: try after the next round
            p.pending.pop(0)

    def _describe(self, v: Verdict) -> str:
        if not v.agreed:
            return f"round {v.round}: no quorum yet; this org computed {v.computed[:12]}"
        verdict = "agrees with" if v.agreed == v.computed else "DIFFERS from"
        out = f", outvoted: {', '.join(v.outvoted)}" if v.outvoted else ""
        return f"round {v.round}: the quorum's {v.agreed[:12]} {verdict} this org's {v.computed[:12]}{out}"


class _Stopped(Exception):
    pass
