"""The next global model, computed a chunk at a time in place, is exactly the float32
round trip it is defined as: fixedpoint.encode(global_parameters(global + step))."""

from __future__ import annotations

import numpy as np
import pytest

from fabricml.federation import fixedpoint
from fabricml.federation.training import NEXT_GLOBAL_CHUNK, global_parameters, next_global


@pytest.mark.parametrize("span", [2**10, 2**24, 2**33, 2**36])
def test_next_global_is_the_float32_round_trip_bit_for_bit(span: int) -> None:
    rng = np.random.default_rng(span)
    shapes = [(NEXT_GLOBAL_CHUNK + 17,), (7, 3), (0,), ()]
    glob = [rng.integers(-span, span, size=s, dtype=np.int64) for s in shapes]
    step = [rng.integers(-span, span, size=s, dtype=np.int64) for s in shapes]
    want = fixedpoint.encode(global_parameters([g + s for g, s in zip(glob, step, strict=True)]))
    got = next_global(glob, step)
    assert [(a.dtype, a.shape) for a in got] == [(a.dtype, a.shape) for a in want]
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
    if span == 2**36:  # beyond the clip: both saturate at the bound
        assert max(int(np.abs(a).max(initial=0)) for a in got) == fixedpoint.BOUND


def test_global_parameters_round_the_decoded_values_to_float32_as_astype_does() -> None:
    rng = np.random.default_rng(7)
    glob = [
        rng.integers(-(2**36), 2**36, size=s, dtype=np.int64) for s in [(NEXT_GLOBAL_CHUNK + 5,), (3, 2), ()]
    ]
    want = [a.astype(np.float32) for a in fixedpoint.decode(glob)]
    got = global_parameters(glob)
    assert [(a.dtype, a.shape) for a in got] == [(a.dtype, a.shape) for a in want]
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
