"""Deterministic aggregation: exact fixed-point rules that give the same bytes everywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from fabricml.federation import aggregation as agg
from fabricml.federation.fixedpoint import SCALE_BITS, decode, digest, encode, from_bytes, to_bytes


def _updates(n: int = 5, seed: int = 7) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [encode([rng.normal(0, 0.1, (16, 8)), rng.normal(0, 0.1, 8)]) for _ in range(n)]


def test_encoding_round_trips_within_one_fixed_point_step() -> None:
    x = [np.array([0.5, -1.25, 3.0e-5, 1000.0])]
    back = decode(encode(x))[0]
    assert np.allclose(back[:3], x[0][:3], atol=2.0**-SCALE_BITS)
    assert back[3] == 256.0  # clipped to the documented bound
    with pytest.raises(ValueError, match="finite"):
        encode([np.array([np.nan])])


def test_serialization_is_canonical_and_checked() -> None:
    u = _updates(1)[0]
    raw = to_bytes(u)
    assert all(np.array_equal(a, b) for a, b in zip(from_bytes(raw), u, strict=True))
    assert digest(u) == digest(from_bytes(raw))
    with pytest.raises(ValueError):
        from_bytes(raw + b"\x00")


def test_fedavg_is_the_exact_sample_weighted_mean() -> None:
    a = [np.array([10, 20], dtype=np.int64)]
    b = [np.array([40, 50], dtype=np.int64)]
    assert agg.fedavg([a, b], [1, 2])[0].tolist() == [30, 40]
    with pytest.raises(ValueError, match="weight"):
        agg.fedavg([a, b], [1])


def test_robust_rules_ignore_one_outlier() -> None:
    honest = [[np.array([100, 100], dtype=np.int64)] for _ in range(4)]
    attacker = [np.array([10**9, -(10**9)], dtype=np.int64)]
    updates = [*honest, attacker]
    assert agg.coordinate_median(updates)[0].tolist() == [100, 100]
    assert agg.trimmed_mean(updates, 1)[0].tolist() == [100, 100]
    _, selected = agg.multi_krum(updates, byzantine=1, keep=3)
    assert 4 not in selected


def test_norm_bounding_scales_down_exactly() -> None:
    u = [np.array([3 << 16, 4 << 16], dtype=np.int64)]
    assert agg.norm(u) == 5 << 16  # fixed-point units, no bits dropped
    bounded = agg.bound_norm(u, 1 << 16)
    assert bounded[0].tolist() == [39322, 52429]  # 0.6 and 0.8 of 2**16, rounded to nearest
    assert agg.norm(bounded) <= 1 << 16
    assert agg.bound_norm(u, 10 << 16)[0].tolist() == u[0].tolist()


def test_mismatched_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="shapes"):
        agg.fedavg([[np.zeros(2, np.int64)], [np.zeros(3, np.int64)]], [1, 1])


SCRIPT = textwrap.dedent(
    """
    import json, numpy as np
    from fabricml.federation import aggregation as agg
    from fabricml.federation.fixedpoint import digest, encode
    rng = np.random.default_rng(11)
    updates = [encode([rng.normal(0, 0.05, (256, 64)), rng.normal(0, 0.05, 64)]) for _ in range(7)]
    out = {
        "fedavg": digest(agg.fedavg(updates, [3, 1, 4, 1, 5, 9, 2])),
        "median": digest(agg.coordinate_median(updates)),
        "trimmed": digest(agg.trimmed_mean(updates, 2)),
        "krum": digest(agg.multi_krum(updates, 2, 3)[0]),
        "bounded": digest(agg.bound_norm(updates[0], 10)),
    }
    print(json.dumps(out, sort_keys=True))
    """
)


def test_two_processes_with_different_thread_counts_produce_the_same_digests() -> None:
    results = []
    for threads in ("1", "2"):
        env = {
            **os.environ,
            **{v: threads for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")},
        }
        out = subprocess.run(
            [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True
        )
        results.append(json.loads(out.stdout))
    assert results[0] == results[1]
    assert len(set(results[0].values())) == 5  # the rules really differ


def test_fedavg_equals_the_rounded_rational_mean_whatever_the_weights() -> None:
    rng = np.random.default_rng(2)
    for weights in ([5, 5, 5, 5], [1, 2, 2, 7], [3, 1, 3, 1], [2**20, 1, 1, 2**20]):
        ups = [[rng.integers(-(2**32), 2**32 + 1, 40), rng.integers(-3, 4, ())] for _ in weights]
        out = agg.fedavg(ups, weights)
        for k in range(2):
            for j in range(ups[0][k].size):
                num = sum(int(u[k].flat[j]) * w for u, w in zip(ups, weights, strict=True))
                total = sum(weights)
                expected = (abs(num) + total // 2) // total * (1 if num >= 0 else -1)
                assert int(out[k].flat[j]) == expected, (weights, k, j)
