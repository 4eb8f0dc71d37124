"""A lying client clock: proposals signed with a timestamp ahead of this machine's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

from google.protobuf import timestamp_pb2

from fabricml.gateway import _messages


@contextmanager
def proposals_ahead(seconds: int) -> Iterator[None]:
    """Inside, every proposal this process signs claims to be `seconds` in the future."""
    real_now = _messages._now

    def ahead() -> timestamp_pb2.Timestamp:
        ts = real_now()
        ts.seconds += seconds
        return ts

    with mock.patch.object(_messages, "_now", ahead):
        yield
