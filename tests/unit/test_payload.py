"""An update decoded with its screening answers (payload.read_screened) is refused,
flagged and remembered exactly as when screening computes them from the values: tampered
and truncated bytes raise the reader's own error, out-of-bound, empty, copied and replayed
updates are flagged with the same reasons, answers that do not describe the update in
hand are ignored, and every outcome of the frozen fixture is unchanged."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from fabricml.federation import evidence, exact, fixedpoint, wire
from fabricml.federation.evidence import History, screen
from fabricml.federation.fixedpoint import BOUND, bound_violation
from fabricml.federation.payload import PIECE_VALUES, Screened, read_screened
from tests.unit.outcome_cases import FIXTURE, SHAPES, cases, outcome_of, summary

EXPECTED = json.loads(FIXTURE.read_text())
WIDE = [(PIECE_VALUES + 5,), (3,), (2 * PIECE_VALUES - 7, 1)]  # tensors that end inside pieces


def _wire(update: list[np.ndarray], key: str = "Org1MSP/trainer") -> bytes:
    return wire.to_bytes(update, {"task": "t", "round": 3, "participant": key})


def _read(raw: bytes) -> tuple[list[np.ndarray], Screened]:
    return read_screened(wire.UpdateReader(io.BytesIO(raw)))


def _old_error(raw: bytes) -> str:
    """The error the reader gave when the whole update was decoded in one call."""
    reader = wire.UpdateReader(io.BytesIO(raw))
    with pytest.raises(wire.WireError) as err:
        reader.read_into(np.empty(reader.total, dtype=np.int64))
    return str(err.value)


def _update(shapes: list[tuple[int, ...]], seed: int, high: int = 1 << 20) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(-high, high + 1, s, dtype=np.int64) for s in shapes]


@pytest.mark.parametrize("damage", ["flip body", "flip width", "truncate", "trailing", "flip checksum"])
def test_tampered_or_truncated_bytes_raise_the_readers_own_error(damage: str) -> None:
    raw = bytearray(_wire(_update(WIDE, 1)))
    head = 4 + int.from_bytes(raw[:4], "little")
    if damage == "flip body":
        raw[head + 1 + 3 * 5000] ^= 0x40
    elif damage == "flip width":
        raw[head] = 7  # no such width
    elif damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "trailing":
        raw += b"\0"
    else:
        raw[-1] ^= 1
    with pytest.raises(wire.WireError) as err:
        _read(bytes(raw))
    assert str(err.value) == _old_error(bytes(raw))


@pytest.mark.parametrize(
    ("where", "value"),
    [(0, BOUND + 1), (PIECE_VALUES + 4, -BOUND - 1), (PIECE_VALUES + 5, BOUND + 7),
     (PIECE_VALUES + 8, np.iinfo(np.int64).min), (2 * PIECE_VALUES, np.iinfo(np.int64).max), (None, BOUND)],
)  # fmt: skip
def test_a_value_beyond_the_bound_is_found_in_the_tensor_that_holds_it(where: int | None, value: int) -> None:
    flat = np.concatenate([a.ravel() for a in _update(WIDE, 2)])
    if where is not None:
        flat[where] = value
    else:  # at the bound itself: allowed
        flat[-1], flat[0] = BOUND, -BOUND
    update = exact.backed(flat.copy(), WIDE)
    decoded, screened = _read(_wire(update))
    assert screened.describes(decoded) and not screened.describes(update)
    assert screened.violation == bound_violation(update) == bound_violation(decoded)
    assert screened.digest == fixedpoint.digest(update) and not screened.empty
    assert (screened.violation is None) == (where is None)


def test_an_empty_update_is_empty_and_one_value_makes_it_not() -> None:
    zeros = [np.zeros(s, dtype=np.int64) for s in WIDE]
    assert _read(_wire(zeros))[1].empty
    zeros[1][2] = -1
    assert not _read(_wire(zeros))[1].empty


def test_screening_with_the_answers_flags_and_remembers_what_it_flags_without_them() -> None:
    honest = _update(WIDE, 3)
    bad = [a.copy() for a in honest]
    bad[2][5, 0] = BOUND + 1
    ups = {"Org1MSP/a": honest, "Org2MSP/a": [a.copy() for a in honest], "Org3MSP/a": bad,
           "Org4MSP/a": [np.zeros(s, dtype=np.int64) for s in WIDE], "Org5MSP/a": _update(WIDE, 4),
           "Org6MSP/a": _update(WIDE, 5)}  # fmt: skip
    seen = {fixedpoint.digest(ups["Org5MSP/a"]): "Org5MSP/a@2"}  # a replay of its last round
    decoded, answers = {}, {}
    for k, u in ups.items():
        decoded[k], answers[k] = _read(_wire(u, k))
    shapes = [tuple(s) for s in WIDE]
    d_before: dict[str, str] = {}
    d_after: dict[str, str] = {}
    before = screen(3, decoded, History(seen=dict(seen)), {}, shapes, d_before)
    after = screen(3, decoded, History(seen=dict(seen)), {}, shapes, d_after, answers)
    assert before == after and d_before == d_after
    flags = after[1]
    assert sorted(flags) == ["Org1MSP/a", "Org2MSP/a", "Org3MSP/a", "Org4MSP/a", "Org5MSP/a"]
    assert "beyond the bound" in flags["Org3MSP/a"] and "empty" in flags["Org4MSP/a"]


def test_with_the_answers_screening_reads_no_value_again(monkeypatch: pytest.MonkeyPatch) -> None:
    decoded, answers = {}, {}
    for i in range(3):
        k = f"Org{i}MSP/a"
        decoded[k], answers[k] = _read(_wire(_update(WIDE, 10 + i), k))

    def refused(*_: object) -> None:
        raise AssertionError("screening hashed or bound-checked a decoded update again")

    monkeypatch.setattr(evidence, "payload_digest", refused)
    monkeypatch.setattr(evidence, "bound_violation", refused)
    payloads: dict[str, str] = {}
    usable, flags = screen(3, decoded, History(), {}, [tuple(s) for s in WIDE], payloads, answers)
    assert sorted(usable) == sorted(decoded) and not flags
    assert payloads == {k: a.digest for k, a in answers.items()}


def test_answers_that_do_not_describe_the_update_in_hand_are_ignored() -> None:
    """A stale answer ("within the bound") next to another update beyond it: recomputed."""
    good, screened = _read(_wire(_update(WIDE, 6)))
    bad = [a.copy() for a in good]
    bad[0][0] = BOUND + 1
    shapes = [tuple(s) for s in WIDE]
    usable, flags = screen(3, {"O/a": bad}, History(), {}, shapes, None, {"O/a": screened})
    assert not usable and "beyond the bound" in flags["O/a"]
    same_values = [a.copy() for a in good]  # equal values, not the decoded vector: recomputed alike
    assert screen(3, {"O/a": same_values}, History(), {}, shapes, None, {"O/a": screened})[0]


@pytest.mark.parametrize(("name", "rule", "build"), cases(), ids=[f"{n} {r}" for n, r, _ in cases()])
def test_every_frozen_outcome_is_the_same_from_decoded_updates(name: str, rule: str, build: object) -> None:
    raw = build()  # type: ignore[operator]
    answers = {}
    for k, u in raw["updates"].items():
        if [a.shape for a in u] == SHAPES:
            raw["updates"][k], answers[k] = _read(_wire(u, k))
    assert summary(outcome_of(rule, raw, answers)) == EXPECTED[f"{name} {rule}"]


def test_a_scalar_tensor_gets_the_digest_fixedpoint_gives_its_values() -> None:
    """fixedpoint.digest sees a scalar as one value of shape (1,): so must the screening,
    or a replay of the same values in another accepted format would not be recognized."""
    update = [np.array(5, dtype=np.int64), *_update([(3,), (2, 2)], 7)]
    values, screened = _read(_wire(update))
    assert screened.digest == fixedpoint.digest(values) == fixedpoint.digest(update)
