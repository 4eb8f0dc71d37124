"""The compact wire format for fixed-point updates (v2, written, and v1, still read):
exact, canonical, streaming, and refusing truncated, tampered or needlessly wide bytes."""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import zlib

import numpy as np
import pytest

from fabricml.federation import bytewidth, fixedpoint, wire
from fabricml.federation.wire import (
    BLOCK_VALUES,
    FORMAT,
    FORMAT_V1,
    FORMATS,
    UpdateReader,
    UpdateWriter,
    WireError,
)

I64 = np.iinfo(np.int64)
CONTEXT = {"task": "t1", "round": 3, "participant": "Org1MSP/u", "dataset": {"rows": 9}, "nonce": "ab"}


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(x.shape == y.shape and x.dtype == y.dtype and np.array_equal(x, y)
                                    for x, y in zip(a, b, strict=True))  # fmt: skip


EDGES = {
    "int64 extremes": [np.array([I64.min, I64.max, 0, -1, 1, I64.min + 1, I64.max - 1], dtype=np.int64)],
    "zeros": [np.zeros((3, 5), dtype=np.int64), np.zeros(BLOCK_VALUES * 2, dtype=np.int64)],
    "mixed": [
        np.arange(-5000, 5000, dtype=np.int64).reshape(100, 100),
        np.array(7, dtype=np.int64),  # a scalar tensor
        np.zeros((0, 4), dtype=np.int64),  # an empty one
        np.array([2**32, -(2**32)] * (BLOCK_VALUES + 3), dtype=np.int64),  # fixedpoint's bounds
    ],
    "empty update": [],
    "one value per width": [np.array([(1 << b) - 1 for b in range(63)] + [-(1 << b) for b in range(63)])],
}


WIDTH_EDGES = [  # each width's extremes, and one past them (v2's width boundaries)
    np.array([v for w in (1, 2, 3, 4, 6) for v in (-(1 << (8 * w - 1)), (1 << (8 * w - 1)) - 1)]),
    np.array([v for w in (1, 2, 3, 4, 6) for v in (-(1 << (8 * w - 1)) - 1, 1 << (8 * w - 1))]),
]
EDGES["width edges"] = [np.repeat(a, 600).astype(np.int64) for a in WIDTH_EDGES]
EDGES["clipping bound"] = [np.array([fixedpoint.BOUND, -fixedpoint.BOUND] * BLOCK_VALUES, dtype=np.int64)]


@pytest.mark.parametrize("kind", FORMATS)
@pytest.mark.parametrize("name", sorted(EDGES))
def test_decode_of_encode_is_bit_exact(name: str, kind: str) -> None:
    update = EDGES[name]
    raw = wire.to_bytes(update, CONTEXT, kind)
    assert _same(wire.from_bytes(raw), [np.asarray(a, dtype=np.int64) for a in update])
    assert wire.header(raw)["context"] == CONTEXT and wire.header(raw)["format"] == kind
    assert wire.to_bytes(update, CONTEXT, kind) == raw  # a pure function of the values


def test_v2_stores_each_block_in_the_fewest_bytes_that_hold_it() -> None:
    for w in (1, 2, 3, 4, 6, 8):
        top = (1 << (8 * w - 1)) - 1 if w < 8 else np.iinfo(np.int64).max
        for extreme in (top, -top - 1):
            raw = wire.to_bytes([np.full(BLOCK_VALUES, extreme, dtype=np.int64)])
            body = len(raw) - 4 - int.from_bytes(raw[:4], "little") - 4  # a 4-byte CRC-32 after it
            assert body == 1 + w * BLOCK_VALUES, (w, extreme)
    raw = wire.to_bytes([np.zeros(BLOCK_VALUES, dtype=np.int64)])
    assert len(raw) - 4 - int.from_bytes(raw[:4], "little") - 4 == 1


@pytest.mark.parametrize("kind", FORMATS)
def test_random_updates_of_every_size_round_trip_and_cost_less_than_float32(kind: str) -> None:
    rng = np.random.default_rng(7)
    for n in (1, 7, 8, BLOCK_VALUES - 1, BLOCK_VALUES, BLOCK_VALUES + 1, 3 * BLOCK_VALUES + 5, 300_000):
        update = [np.rint(rng.normal(0, 2e5, n)).astype(np.int64), rng.integers(-9, 9, (3, 3))]
        raw = wire.to_bytes(update, kind=kind)
        assert _same(wire.from_bytes(raw), update)
        if n >= BLOCK_VALUES:
            assert len(raw) < 4 * (n + 9), (n, len(raw))  # under float32's 4 bytes a value


def test_a_real_update_encodes_to_three_bytes_a_value_in_v2_and_under_three_in_v1() -> None:
    update = fixedpoint.encode([np.random.default_rng(0).normal(0, 0.01, 50_000)])
    assert len(wire.to_bytes(update)) / 50_000 < 3.01
    assert len(wire.to_bytes(update, kind=FORMAT_V1)) / 50_000 < 3.0


@pytest.mark.parametrize("kind", FORMATS)
def test_chunks_stream_in_order_and_the_writer_takes_values_in_any_pieces(kind: str) -> None:
    values = np.rint(np.random.default_rng(1).normal(0, 1e6, 40 * BLOCK_VALUES + 17)).astype(np.int64)
    values[5 * BLOCK_VALUES : 6 * BLOCK_VALUES] //= 1000  # a narrower run between wide ones
    buf = io.BytesIO()
    writer = UpdateWriter(buf, [(len(values),)], CONTEXT, kind)
    for piece in np.split(values, [1, 100, 5000, 5001, 30_000]):
        writer.write(piece)
    writer.close()
    assert buf.getvalue() == wire.to_bytes([values], CONTEXT, kind)
    for size in (1, 1000, 2 * BLOCK_VALUES, 17 * BLOCK_VALUES + 3, len(values)):
        chunks = list(UpdateReader(io.BytesIO(buf.getvalue())).chunks(values=size))
        assert all(len(c) == size for c in chunks[:-1]) and np.array_equal(np.concatenate(chunks), values)
    reader, out = UpdateReader(io.BytesIO(buf.getvalue())), np.empty(3 * BLOCK_VALUES + 1, np.int64)
    got = [out[: reader.read_into(out)].copy() for _ in range(14)]
    assert reader.read_into(out) == 0 and np.array_equal(np.concatenate(got), values)


def test_the_writer_refuses_more_or_fewer_values_than_the_shapes_hold() -> None:
    writer = UpdateWriter(io.BytesIO(), [(2, 2)])
    with pytest.raises(WireError, match="more values than the shapes hold"):
        writer.write(np.arange(5))
    writer = UpdateWriter(io.BytesIO(), [(2, 2)])
    writer.write(np.arange(3))
    with pytest.raises(WireError, match="3 values written; the shapes hold 4"):
        writer.close()


VALUES = np.arange(-3 * BLOCK_VALUES, 3 * BLOCK_VALUES, 7, dtype=np.int64)
RAWS = {kind: wire.to_bytes([VALUES], CONTEXT, kind) for kind in FORMATS}
CUTS = [0, 3, 10, 0.5, -33, -1]  # bytes kept: a count, a share, or all but


@pytest.mark.parametrize("kind", FORMATS)
@pytest.mark.parametrize("cut", CUTS)
def test_a_truncated_stream_is_refused(cut: float, kind: str) -> None:
    raw = RAWS[kind]
    keep = int(len(raw) * cut) if 0 < cut < 1 else len(raw) + int(cut) if cut < 0 else int(cut)
    with pytest.raises(WireError, match=r"end inside|tampered or truncated"):
        wire.from_bytes(raw[:keep])


@pytest.mark.parametrize("kind", FORMATS)
def test_a_flipped_bit_anywhere_is_refused(kind: str) -> None:
    raw = RAWS[kind]
    header_end = 4 + int.from_bytes(raw[:4], "little")
    for at in (1, header_end - 2, header_end, header_end + 1, len(raw) // 2, len(raw) - 40, len(raw) - 1):
        tampered = bytearray(raw)
        tampered[at] ^= 0x10
        with pytest.raises(WireError):
            wire.from_bytes(bytes(tampered))


@pytest.mark.parametrize("kind", FORMATS)
def test_bytes_after_the_checksum_are_refused(kind: str) -> None:
    with pytest.raises(WireError, match="go on after their checksum"):
        wire.from_bytes(RAWS[kind] + b"\x00")


def _with_checksum(body: bytes, kind: str = FORMAT_V1) -> bytes:
    check = wire.checksum(kind)
    check.update(body)
    return body + check.digest()


def test_v1_ends_with_sha256_and_v2_with_crc32_of_all_before() -> None:
    for kind, trailer in ((FORMAT_V1, hashlib.sha256(RAWS[FORMAT_V1][:-32]).digest()),
                          (FORMAT, zlib.crc32(RAWS[FORMAT][:-4]).to_bytes(4, "little"))):  # fmt: skip
        assert RAWS[kind].endswith(trailer)


def _head(shapes: list[list[int]], kind: str = FORMAT_V1) -> bytes:
    return wire._header_bytes(shapes, None, kind)


def test_a_needlessly_wide_spelling_of_the_same_values_is_refused() -> None:
    # v1: 8 zeros spelled with 1 bit each (one all-zero plane) instead of 0 bits
    with pytest.raises(WireError, match="fewer hold its values"):
        wire.from_bytes(_with_checksum(_head([[8]]) + bytes([1]) + b"\x00"))
    assert _same(wire.from_bytes(_with_checksum(_head([[8]]) + bytes([0]))), [np.zeros(8, np.int64)])
    # v2: zeros in one byte each, and values of two bytes spelled in three or four
    v2 = _head([[4]], FORMAT)
    for width, values in [
        (1, [0] * 4),
        (3, [300, -300, 0, 1]),
        (4, [0, 0, 0, -(1 << 23)]),
        (8, [(1 << 47) - 1] * 4),
    ]:
        body = bytewidth.pack_rows(np.array([values], dtype=np.int64), width).tobytes()
        with pytest.raises(WireError, match="fewer hold its values"):
            wire.from_bytes(_with_checksum(v2 + bytes([width]) + body, FORMAT))
    assert _same(wire.from_bytes(_with_checksum(v2 + bytes([0]), FORMAT)), [np.zeros(4, np.int64)])


def test_non_zero_padding_and_impossible_widths_are_refused() -> None:
    # v1: 3 values of 1 bit: the plane's 5 unused bits must be zero
    with pytest.raises(WireError, match="padding bits"):
        wire.from_bytes(_with_checksum(_head([[3]]) + bytes([1]) + bytes([0b11111010])))
    with pytest.raises(WireError, match="at most 64"):
        wire.from_bytes(_with_checksum(_head([[3]]) + bytes([65]) + bytes(64)))
    for width in (5, 7, 9, 255):  # v2: only 0, 1, 2, 3, 4, 6 and 8 bytes a value
        with pytest.raises(WireError, match=f"claims {width} bytes per value; widths"):
            wire.from_bytes(_with_checksum(_head([[3]], FORMAT) + bytes([width]) + bytes(3 * width), FORMAT))


@pytest.mark.parametrize(
    "head",
    [b'{"format":"fabricml.fixedpoint/v1"}', b"not json", b'{"format":"fabricml.wire/v1","scaleBits":24,'
     b'"blockValues":4096,"shapes":[[-1]]}'],
)  # fmt: skip
def test_headers_of_other_formats_or_bad_shapes_are_refused(head: bytes) -> None:
    with pytest.raises(WireError):
        wire.from_bytes(len(head).to_bytes(4, "little") + head)


def test_a_huge_header_claim_is_refused_before_reading_it() -> None:
    with pytest.raises(WireError, match="at most"):
        wire.from_bytes((1 << 31).to_bytes(4, "little"))


def test_readers_accept_both_wire_versions_and_fixedpoints_int64_format() -> None:
    update = [np.arange(-50, 50, dtype=np.int64).reshape(10, 10)]
    raws = [wire.to_bytes(update, CONTEXT, kind) for kind in FORMATS] + [fixedpoint.to_bytes(update, CONTEXT)]
    for raw in raws:
        head, values = wire.decode_any(raw)
        assert head["context"] == CONTEXT and _same(values, update)
    with pytest.raises(ValueError):
        wire.decode_any(b"\x02\x00\x00\x00{}")


def _decode_in_child(raw: bytes, queue: multiprocessing.Queue[bool]) -> None:
    queue.put(_same(wire.from_bytes(raw), [np.tile(VALUES, 300)]))


@pytest.mark.timeout(60)
def test_a_forked_child_decodes_with_its_own_checksum_thread() -> None:
    # The parent's checksum thread exists (it decoded first); a forked child has none of
    # it and must start its own instead of waiting forever on the parent's.
    raw = wire.to_bytes([np.tile(VALUES, 300)], None)  # several read-ahead buffers
    assert _same(wire.from_bytes(raw), [np.tile(VALUES, 300)])
    ctx = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[bool] = ctx.Queue()
    child = ctx.Process(target=_decode_in_child, args=(raw, queue))
    child.start()
    child.join(30)
    if child.exitcode is None:
        child.kill()
    assert child.exitcode == 0 and queue.get(timeout=5) is True
