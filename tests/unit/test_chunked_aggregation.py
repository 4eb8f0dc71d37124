"""Chunked aggregation gives the bytes and digest of the whole-array rules, at any chunk size."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from fabricml.federation import aggregation, chunked, exact, fixedpoint, wire
from fabricml.federation.fixedpoint import Update
from fabricml.federation.rulebook import aggregate, parse

SHAPES = [(37, 11), (5,), (3, 3, 7), (1,)]  # 477 values: chunk edges fall inside tensors
SIZES = [1, 7, 100, 476, 477, 4096, 5000]  # odd boundaries, exactly the total, more than it


def _updates(n: int, seed: int = 3) -> list[Update]:
    rng = np.random.default_rng(seed)
    out = [fixedpoint.encode([rng.normal(0, 0.05, s) for s in SHAPES]) for _ in range(n)]
    out[0][0][0, :4] = [fixedpoint.BOUND, -fixedpoint.BOUND, 0, -1]  # extremes and ties
    out[-1][0][0, :4] = out[0][0][0, :4]
    return out


def _chunked(updates: list[Update], rule: chunked.ChunkRule, size: int) -> tuple[Update, str]:
    buf = io.BytesIO()
    sink = chunked.AggregateSink(SHAPES, out=buf)
    digest = chunked.aggregate([chunked.in_memory(u) for u in updates], rule, sink, size)
    return wire.from_bytes(buf.getvalue()), digest


def _same(a: Update, b: Update) -> bool:
    return all(x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("n", [1, 2, 5, 10])
def test_classic_rules_chunked_equal_the_whole_array_rules(n: int, size: int) -> None:
    ups = _updates(n)
    weights = [300 + 17 * i for i in range(n)]
    cases = [
        (chunked.fedavg(weights), aggregation.fedavg(ups, weights)),
        (chunked.fedavg([1] * n), aggregation.fedavg(ups, [1] * n)),
        (chunked.coordinate_median(), aggregation.coordinate_median(ups)),
        (chunked.trimmed_mean((n - 1) // 2), aggregation.trimmed_mean(ups, (n - 1) // 2)),
    ]
    for rule, whole in cases:
        got, digest = _chunked(ups, rule, size)
        assert _same(got, whole)
        assert digest == fixedpoint.digest(whole)


@pytest.mark.parametrize("size", [1, 13, 477])
@pytest.mark.parametrize("rule", ["fedavg", "median", "trimmed:1", "trimmed:3", "trimmed:0"])
def test_rulebook_rules_chunked_equal_the_rulebook_with_the_same_influence(rule: str, size: int) -> None:
    ups = _updates(7)
    samples = [900, 40, 310, 310, 5000, 77, 310]
    flat = [exact.flatten(u) for u in ups]
    whole = aggregate(parse(rule), flat, samples, None, b"")
    chunks = chunked.RulebookChunks(rule, samples)
    got, digest = _chunked(ups, chunks, size)
    assert np.array_equal(exact.flatten(got), whole.vector)
    assert digest == fixedpoint.digest(exact.unflatten(whole.vector, ups[0]))
    assert chunks.influence() == whole.influence


def test_rules_that_need_whole_vectors_are_refused_with_the_allowed_list() -> None:
    for rule in ["trust+cc", "nnm+fedavg", "median+normbound", "krum:1:3"]:
        with pytest.raises(ValueError, match="chunked rules: fedavg, median, trimmed"):
            chunked.RulebookChunks(rule, [1, 2, 3])


def test_wire_files_stream_to_the_same_aggregate_as_whole_updates(tmp_path: Path) -> None:
    ups = _updates(4)
    paths = []
    for i, u in enumerate(ups):
        paths.append(tmp_path / f"u{i}.bin")
        paths[-1].write_bytes(wire.to_bytes(u, {"participant": f"p{i}"}))
    with chunked.wire_files(paths, values=wire.BLOCK_VALUES) as (shapes, streams):
        assert shapes == SHAPES
        digest = chunked.aggregate(streams, chunked.coordinate_median(), chunked.AggregateSink(shapes), 101)
    assert digest == fixedpoint.digest(aggregation.coordinate_median(ups))


def test_a_tampered_file_stops_the_aggregate_before_it_has_a_digest(tmp_path: Path) -> None:
    ups = _updates(3)
    paths = [tmp_path / f"u{i}.bin" for i in range(3)]
    for p, u in zip(paths, ups, strict=True):
        p.write_bytes(wire.to_bytes(u))
    raw = bytearray(paths[1].read_bytes())
    raw[-40] ^= 1  # inside the last block: caught by the checksum at the end
    paths[1].write_bytes(bytes(raw))
    with pytest.raises(wire.WireError), chunked.wire_files(paths) as (shapes, streams):
        chunked.aggregate(streams, chunked.fedavg([1, 1, 1]), chunked.AggregateSink(shapes), 64)


def test_updates_of_other_shapes_or_lengths_are_refused(tmp_path: Path) -> None:
    ups = _updates(2)
    short = [ups[1][0]]
    with pytest.raises(ValueError, match="different numbers of values"):
        chunked.aggregate([chunked.in_memory(u) for u in (ups[0], short)], chunked.fedavg([1, 1]),
                          chunked.AggregateSink(SHAPES), 50)  # fmt: skip
    paths = [tmp_path / "a.bin", tmp_path / "b.bin"]
    paths[0].write_bytes(wire.to_bytes(ups[0]))
    paths[1].write_bytes(wire.to_bytes(short))
    with pytest.raises(ValueError, match="has shapes"), chunked.wire_files(paths):
        pass


def test_bad_weights_and_chunk_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="positive weight"):
        chunked.fedavg([1, 0])
    with pytest.raises(ValueError, match="positive weight"):
        chunked.fedavg([1 << 30, 1])
    with pytest.raises(ValueError, match="at least one value"):
        list(chunked.rechunk([np.zeros(3, np.int64)], 0))
    with pytest.raises(ValueError, match="at least one update"):
        list(chunked.lockstep([], 4))


def test_many_small_pieces_come_out_as_whole_chunks() -> None:
    pieces = (np.full(3, i, np.int64) for i in range(10_000))
    seen = 0
    for c in chunked.rechunk(pieces, 1000):
        assert len(c) == 1000 or seen + len(c) == 30_000
        seen += len(c)
    assert seen == 30_000
