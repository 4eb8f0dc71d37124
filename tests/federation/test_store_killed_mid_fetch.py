"""An org's artifact store killed (SIGKILL) mid-fetch of a multi-megabyte update during a
round, on the shared network, and restarted: the fetching agent resumes the update where
the broken connection left it (Range), and the round finalizes. Two participants, in org2
and org3, so that the quorum (2 of 3 orgs) needs the org whose fetch was broken."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from pathlib import Path

import torch

from fabricml.demo.admins import OrgAdmins
from fabricml.demo.task import DemoOptions
from fabricml.federation.participation import RegistryStore
from fabricml.network.network import Network
from fabricml.registry.spares import Spares
from tests.fault.nodes import kill, restart
from tests.federation.harness import TaskRun, begin_when_joined, finish, prepare, start

WIDTH = 60_000  # an MLP on digits with 74 * WIDTH = 4.4 M parameters: updates of ~11 MB
BLOCK_AT = 1 << 20  # the fetcher stops reading here, so the store has not sent most of it


class KillMidFetch:
    """org3's agent's store: at the first megabyte of an update from org2's store,
    that store is SIGKILLed (while the fetcher holds its read) and later restarted."""

    def __init__(self, net: Network, inner: RegistryStore) -> None:
        self.net, self.inner = net, inner
        self._fetching = threading.local()  # the agent fetches a round's updates in parallel
        self.seen: list[tuple[str, int, int, float]] = []  # uri, done, total, when
        self.kept = -1  # bytes fetched when the store was killed
        self.killed_at = self.restarting_at = float("inf")
        self.victim = ""
        self.failed: list[BaseException] = []  # from bring_back's thread

    @property
    def uri(self) -> str:
        """The URI this thread fetches (progress is reported in the fetching thread)."""
        return str(getattr(self._fetching, "uri", ""))

    def fetch_to(
        self, digest: str, uri: str, dest: Path, spares: Spares | None = None, size: int = 0
    ) -> Path:
        self._fetching.uri = uri
        return self.inner.fetch_to(digest, uri, dest, spares, size)

    def initial_model(self, ref: str, dest: Path) -> Path:
        return self.inner.initial_model(ref, dest)

    def publish(self, path: Path) -> str:
        return self.inner.publish(path)

    def progress(self, done: int, total: int) -> None:
        self.seen.append((self.uri, done, total, time.monotonic()))
        if self.victim or done < BLOCK_AT or total < 4 * BLOCK_AT:
            return
        owner = next(o for o in self.net.topology.organizations if self.uri.startswith(o.artifacts_url + "/"))
        self.victim, self.kept = owner.artifacts_name, done
        kill(self.net, self.victim)  # the rest of the blob is still on the store's side
        self.killed_at = time.monotonic()

    def bring_back(self) -> None:
        time.sleep(2.0)  # the fetcher's retries run out: the fetch is left as a partial file
        self.restarting_at = time.monotonic()  # nothing of the victim's can arrive before this
        try:
            restart(self.net, self.victim)
        except BaseException as exc:  # raised in the test thread, after the join
            self.failed.append(exc)

    def around_the_kill(self, url: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """(done, total) from the victim's store: while it was down, and after its restart."""
        mine = [(when, done, total) for uri, done, total, when in self.seen if uri.startswith(url + "/")]
        down = [(d, t) for when, d, t in mine if self.killed_at < when < self.restarting_at]
        return down, [(d, t) for when, d, t in mine if when >= self.restarting_at]


def test_a_round_finalizes_after_a_store_is_killed_mid_fetch_and_the_fetch_resumes(network: Network) -> None:
    torch.set_num_threads(1)
    opt = DemoOptions(
        rounds=1, rule="fedavg", epochs=1, width=WIDTH, serve=False, phase_seconds=120,
        task=f"kill-store-{uuid.uuid4().hex[:6]}",
    )  # fmt: skip
    run = TaskRun(opt, [("org2", "trainer"), ("org3", "trainer")], {})
    with OrgAdmins.open(network) as c:
        prepare(c, run)
        fetcher = run.agents[1]
        assert isinstance(fetcher.links.store, RegistryStore)
        store = KillMidFetch(network, fetcher.links.store)
        store.inner.progress = store.progress
        fetcher.links = dataclasses.replace(fetcher.links, store=store)
        start(run)
        begin_when_joined(c, [run])
        deadline = time.monotonic() + 240
        while not store.victim and all(t.is_alive() for t in run.threads) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert store.victim, "org3's agent never fetched a large update"
        back = threading.Thread(target=store.bring_back)
        back.start()
        try:
            finish(c, run, timeout=300)
        finally:
            back.join()
            if store.failed:
                raise store.failed[0]
    assert run.rounds[0]["status"] == "FINALIZED", run.rounds
    assert sorted(run.rounds[0]["agreeing"]) == ["Org2MSP", "Org3MSP"], run.rounds
    orgs = network.topology.organizations
    victim_url = next(o.artifacts_url for o in orgs if o.artifacts_name == store.victim)
    down, after = store.around_the_kill(victim_url)
    held = max([d for d, _ in down], default=store.kept)  # what the broken connection still brought
    assert after, f"the update was whole before its store came back: killed at {store.kept}, then {down[-1:]}"
    done, total = after[0]
    assert held < total and held < done and after[-1][0] == total, (store.kept, held, after[:2], after[-1])
    print(f"update of {total} bytes: killed at {store.kept}, {held} kept; after the restart first at {done}")
