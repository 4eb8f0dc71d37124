"""The compact wire format for fixed-point updates: exact, canonical, streaming, and
refusing truncated, tampered or needlessly wide bytes."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest

from fabricml.federation import fixedpoint, wire
from fabricml.federation.wire import BLOCK_VALUES, UpdateReader, UpdateWriter, WireError

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


@pytest.mark.parametrize("name", sorted(EDGES))
def test_decode_of_encode_is_bit_exact(name: str) -> None:
    update = EDGES[name]
    raw = wire.to_bytes(update, CONTEXT)
    assert _same(wire.from_bytes(raw), [np.asarray(a, dtype=np.int64) for a in update])
    assert wire.header(raw)["context"] == CONTEXT
    assert wire.to_bytes(update, CONTEXT) == raw  # a pure function of the values


def test_random_updates_of_every_size_round_trip_and_cost_less_than_float32() -> None:
    rng = np.random.default_rng(7)
    for n in (1, 7, 8, BLOCK_VALUES - 1, BLOCK_VALUES, BLOCK_VALUES + 1, 3 * BLOCK_VALUES + 5, 300_000):
        update = [np.rint(rng.normal(0, 2e5, n)).astype(np.int64), rng.integers(-9, 9, (3, 3))]
        raw = wire.to_bytes(update)
        assert _same(wire.from_bytes(raw), update)
        if n >= BLOCK_VALUES:
            assert len(raw) < 4 * (n + 9), (n, len(raw))  # under float32's 4 bytes a value


def test_a_real_update_encodes_to_under_three_bytes_a_value() -> None:
    update = fixedpoint.encode([np.random.default_rng(0).normal(0, 0.01, 50_000)])
    assert len(wire.to_bytes(update)) / 50_000 < 3.0


def test_chunks_stream_in_order_and_the_writer_takes_values_in_any_pieces() -> None:
    values = np.rint(np.random.default_rng(1).normal(0, 1e6, 10 * BLOCK_VALUES + 17)).astype(np.int64)
    buf = io.BytesIO()
    writer = UpdateWriter(buf, [(len(values),)], CONTEXT)
    for piece in np.split(values, [1, 100, 5000, 5001, 30_000]):
        writer.write(piece)
    writer.close()
    assert buf.getvalue() == wire.to_bytes([values], CONTEXT)
    chunks = list(UpdateReader(io.BytesIO(buf.getvalue())).chunks(values=2 * BLOCK_VALUES))
    assert len(chunks) > 3 and np.array_equal(np.concatenate(chunks), values)


def test_the_writer_refuses_more_or_fewer_values_than_the_shapes_hold() -> None:
    writer = UpdateWriter(io.BytesIO(), [(2, 2)])
    with pytest.raises(WireError, match="more values than the shapes hold"):
        writer.write(np.arange(5))
    writer = UpdateWriter(io.BytesIO(), [(2, 2)])
    writer.write(np.arange(3))
    with pytest.raises(WireError, match="3 values written; the shapes hold 4"):
        writer.close()


RAW = wire.to_bytes([np.arange(-3 * BLOCK_VALUES, 3 * BLOCK_VALUES, 7, dtype=np.int64)], CONTEXT)


@pytest.mark.parametrize("cut", [0, 3, 10, len(RAW) // 2, len(RAW) - 33, len(RAW) - 1])
def test_a_truncated_stream_is_refused(cut: int) -> None:
    with pytest.raises(WireError, match=r"end inside|tampered or truncated"):
        wire.from_bytes(RAW[:cut])


def test_a_flipped_bit_anywhere_is_refused() -> None:
    header_end = 4 + int.from_bytes(RAW[:4], "little")
    for at in (1, header_end - 2, header_end, header_end + 1, len(RAW) // 2, len(RAW) - 40, len(RAW) - 1):
        tampered = bytearray(RAW)
        tampered[at] ^= 0x10
        with pytest.raises(WireError):
            wire.from_bytes(bytes(tampered))


def test_bytes_after_the_checksum_are_refused() -> None:
    with pytest.raises(WireError, match="go on after their checksum"):
        wire.from_bytes(RAW + b"\x00")


def _with_checksum(body: bytes) -> bytes:
    return body + hashlib.sha256(body).digest()


def _head(shapes: list[list[int]]) -> bytes:
    return wire._header_bytes(shapes, None)


def test_a_needlessly_wide_spelling_of_the_same_values_is_refused() -> None:
    # 8 zeros spelled with 1 bit each (one all-zero plane) instead of 0 bits
    with pytest.raises(WireError, match="fewer hold its values"):
        wire.from_bytes(_with_checksum(_head([[8]]) + bytes([1]) + b"\x00"))
    assert _same(wire.from_bytes(_with_checksum(_head([[8]]) + bytes([0]))), [np.zeros(8, np.int64)])


def test_non_zero_padding_and_impossible_widths_are_refused() -> None:
    # 3 values of 1 bit: the plane's 5 unused bits must be zero
    with pytest.raises(WireError, match="padding bits"):
        wire.from_bytes(_with_checksum(_head([[3]]) + bytes([1]) + bytes([0b11111010])))
    with pytest.raises(WireError, match="at most 64"):
        wire.from_bytes(_with_checksum(_head([[3]]) + bytes([65]) + bytes(64)))


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


def test_readers_accept_both_this_format_and_fixedpoints_int64_one() -> None:
    update = [np.arange(-50, 50, dtype=np.int64).reshape(10, 10)]
    for raw in (wire.to_bytes(update, CONTEXT), fixedpoint.to_bytes(update, CONTEXT)):
        head, values = wire.decode_any(raw)
        assert head["context"] == CONTEXT and _same(values, update)
    with pytest.raises(ValueError):
        wire.decode_any(b"\x02\x00\x00\x00{}")
