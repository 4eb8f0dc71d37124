"""A round's published updates as an agent collects them (fabricml.federation.reveals):
fetched in parallel and checked, each once per round, the same whatever the parallelism;
an update claiming a huge shape is refused before any memory is set aside for it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from fabricml.contracts.federation import Commitment, Participant
from fabricml.federation import exact, wire
from fabricml.federation.reveals import Checked, UnfetchableUpdate, collect, encoded

SHAPES = [(3, 4), (4,)]
TASK, ROUND = "t1", 2


def _commitment(key: str, digest: str) -> Commitment:
    msp, subject = key.split("/")
    return Commitment(participant=Participant(msp_id=msp, subject=subject, slashed=False), digest=digest,
                      samples=10, uri=f"https://store/{digest}", tx_id="tx")  # fmt: skip


def _files(tmp_path: Path) -> tuple[list[Commitment], dict[str, Path]]:
    """Org1 and Org2 publish good updates; Org3's is bound to another round; Org4's is
    not served (yet); Org5's header claims 2**40 - 1 values."""
    commitments, paths = [], {}
    for i in range(1, 4):
        key = f"Org{i}MSP/trainer"
        values = [np.full(s, i * 1000 + j, dtype=np.int64) for j, s in enumerate(SHAPES)]
        raw = encoded(values, {"task": TASK, "round": ROUND if i < 3 else ROUND + 1, "participant": key})
        paths[f"d{i}"] = tmp_path / f"d{i}"
        paths[f"d{i}"].write_bytes(raw)
        commitments.append(_commitment(key, f"d{i}"))
    commitments.append(_commitment("Org4MSP/trainer", "d4"))
    head = {
        "format": wire.FORMAT,
        "scaleBits": 24,
        "blockValues": wire.BLOCK_VALUES,
        "shapes": [[(1 << 40) - 1]],
    }
    huge = json.dumps(head, separators=(",", ":"))
    paths["d5"] = tmp_path / "d5"
    paths["d5"].write_bytes(len(huge).to_bytes(4, "little") + huge.encode() + b"\0" * 64)
    commitments.append(_commitment("Org5MSP/trainer", "d5"))
    return commitments, paths


@pytest.mark.parametrize("parallel", [1, 4])
def test_updates_are_checked_once_each_and_the_result_does_not_depend_on_parallelism(
    tmp_path: Path, parallel: int
) -> None:
    commitments, paths = _files(tmp_path)
    fetched: list[str] = []

    def fetch(digest: str, uri: str) -> Path:
        fetched.append(digest)
        if digest not in paths:
            raise UnfetchableUpdate(f"update {digest} is not served")
        return paths[digest]

    keys = {c.participant.key for c in commitments}
    memo: dict[tuple[str, str], Checked] = {}
    found = collect(commitments, keys, TASK, ROUND, SHAPES, fetch, memo, parallel)
    assert sorted(found.updates) == ["Org1MSP/trainer", "Org2MSP/trainer"]
    assert found.updates["Org2MSP/trainer"][1].tolist() == [2001] * 4
    assert "bound to" in found.invalid["Org3MSP/trainer"]
    assert "not the model's" in found.invalid["Org5MSP/trainer"]
    assert list(found.pending) == ["Org4MSP/trainer"]
    for update in found.updates.values():  # held once: flatten hands back the decoded vector
        assert exact.flatten(update).base is None and not exact.flatten(update).flags.writeable
    again = collect(commitments, keys, TASK, ROUND, SHAPES, fetch, memo, parallel)
    assert sorted(fetched) == ["d1", "d2", "d3", "d4", "d4", "d5"]  # only the pending one again
    assert again.updates.keys() == found.updates.keys() and again.invalid == found.invalid


def test_an_update_of_other_shapes_is_refused_before_its_values_are_read(tmp_path: Path) -> None:
    buf = io.BytesIO()
    wire.encode_to(
        [np.zeros((5,), dtype=np.int64)], buf, {"task": TASK, "round": ROUND, "participant": "O/t"}
    )
    path = tmp_path / "u"
    path.write_bytes(buf.getvalue())
    found = collect([_commitment("O/t", "u")], {"O/t"}, TASK, ROUND, SHAPES, lambda d, u: path)
    assert "not the model's" in found.invalid["O/t"]
