"""The artifact server's HTTP parsing, pacing and connection admission, without sockets."""

from __future__ import annotations

import asyncio
import time
from http import HTTPStatus

import pytest

from fabricml.registry.artifact_http import BadRequest, Pace, PeerTooSlow, parse_head
from fabricml.registry.artifact_server import Admission, ServerLimits


def test_a_request_head_is_parsed_with_lowercase_header_names() -> None:
    r = parse_head(b"GET /v1/blobs/x HTTP/1.1\r\nRange: bytes=5-\r\nConnection: close")
    assert (r.method, r.target, r.headers["range"], r.keep_alive) == ("GET", "/v1/blobs/x", "bytes=5-", False)
    assert parse_head(b"HEAD / HTTP/1.0").keep_alive is False
    assert parse_head(b"HEAD / HTTP/1.1").keep_alive is True


@pytest.mark.parametrize(
    "head",
    [b"GET /", b"GET / HTTP/2", b"GET / HTTP/1.1\r\nno colon", b"GET / HTTP/1.1\r\n\xff: x",
     b"PUT / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2"],
)  # fmt: skip
def test_malformed_heads_are_refused_with_400(head: bytes) -> None:
    with pytest.raises(BadRequest) as refused:
        parse_head(head)
    assert refused.value.status == HTTPStatus.BAD_REQUEST


def test_ranges_name_their_bytes_and_anything_else_is_unsatisfiable() -> None:
    def span(value: str, size: int = 100) -> tuple[int, int] | None:
        return parse_head(f"GET / HTTP/1.1\r\nRange: {value}".encode()).byte_range(size)

    assert span("bytes=0-") == (0, 99) and span("bytes=99-") == (99, 99) and span("bytes=10-1000") == (10, 99)
    assert parse_head(b"GET / HTTP/1.1").byte_range(100) is None
    for bad in (
        "bytes=100-",
        "bytes=5-4",
        "bytes=-5",
        "bytes=0-1,3-4",
        "bytes=x-",
        "bytes=" + "9" * 20 + "-",
    ):
        with pytest.raises(BadRequest) as refused:
            span(bad)
        assert refused.value.status == HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, bad


def test_a_body_length_must_be_given_and_within_the_limit() -> None:
    def length(headers: str) -> int:
        return parse_head(f"PUT / HTTP/1.1\r\n{headers}".encode()).content_length(1000)

    assert length("Content-Length: 1000") == 1000 and length("Content-Length: 0") == 0
    for bad in ("Content-Length: 1001", "Content-Length: -1", "Content-Length: 1e3", "X: y"):
        with pytest.raises(BadRequest, match="0 to 1000 bytes"):
            length(bad)
    with pytest.raises(BadRequest, match="Content-Length"):
        length("Transfer-Encoding: chunked\r\nContent-Length: 5")


def test_the_pace_allows_a_grace_period_then_a_minimum_rate() -> None:
    pace = Pace(min_bytes_per_second=1000, grace_seconds=2.0)
    now = time.monotonic()
    assert 2.9 < pace.timeout(now, 1000) <= 3.0
    with pytest.raises(PeerTooSlow, match="slower than 1000 B/s"):
        pace.timeout(now - 10, 5000)  # 10 s for 5000 bytes: 2 s + 5 s allowed


def test_unauthenticated_connections_beyond_the_caps_drop_the_oldest_first() -> None:
    async def scenario() -> tuple[list[bool], int]:
        admission = Admission(ServerLimits(pending=4, pending_per_address=2))
        tasks = [asyncio.create_task(asyncio.sleep(60)) for _ in range(6)]
        for task, address in zip(tasks, ["a", "a", "a", "b", "c", "d"], strict=True):
            admission.arrive(task, address)
        await asyncio.sleep(0)
        cancelled = [t.cancelled() for t in tasks]
        for t in tasks:
            t.cancel()
        return cancelled, len(admission.pending)

    cancelled, pending = asyncio.run(scenario())
    # a's third evicts a's first (per address); then d overflows the total and the oldest (a's second) goes
    assert cancelled == [True, True, False, False, False, False] and pending == 4


def test_each_org_has_its_own_slots_and_a_bounded_queue_for_more() -> None:
    async def scenario() -> list[object]:
        admission = Admission(ServerLimits(connections_per_org=2, waiting_per_org=1, wait_seconds=0.2))
        seen: list[object] = [await admission.enter("org2"), await admission.enter("org2")]
        waiter = asyncio.create_task(admission.enter("org2"))  # parked in org2's queue
        await asyncio.sleep(0.01)
        seen.append(await admission.enter("org2"))  # the queue is full: refused at once
        seen.append(await admission.enter("org3"))  # another org is not affected
        admission.leave("org2")  # the slot goes to the waiter
        seen.append(await waiter)
        seen.append(await admission.enter("org2"))  # waits 0.2 s, no slot frees: refused
        seen.append(admission.per_org["org2"])
        return seen

    assert asyncio.run(scenario()) == [True, True, False, True, True, False, 2]
