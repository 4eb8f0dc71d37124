"""The participant's side without a ledger: data loading, local training with FedProx
and differential privacy, rules, and the evidence behind scores and flags."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fabricml.federation import data as datasets
from fabricml.federation.aggregation import apply_rule, norm
from fabricml.federation.data import Dataset, sklearn_dataset, split_dirichlet, split_iid
from fabricml.federation.evidence import History, assess
from fabricml.federation.fixedpoint import encode, header, to_bytes
from fabricml.federation.participant import Participant
from fabricml.federation.privacy import DifferentialPrivacy, PrivateUpdates
from fabricml.federation.simulation import Simulation
from fabricml.federation.training import LocalTraining
from fabricml.models.mlp import MLP

X = np.arange(12, dtype=np.float32).reshape(4, 3)
Y = np.array([0, 1, 0, 1])


def test_csv_parquet_and_npz_give_the_same_dataset(tmp_path: Path) -> None:
    with (tmp_path / "d.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "diagnosis", "b", "c"])
        for row, y in zip(X, Y, strict=True):
            w.writerow([row[0], y, row[1], row[2]])
    pq.write_table(
        pa.table({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "diagnosis": Y}), tmp_path / "d.parquet"
    )
    datasets.save_npz(Dataset(X, Y), tmp_path / "d.npz")
    for name, label in (("d.csv", "diagnosis"), ("d.parquet", "diagnosis"), ("d.npz", "label")):
        d = datasets.load(tmp_path / name, label)
        assert np.array_equal(d.features, X) and np.array_equal(d.labels, Y), name
        assert d.features.dtype == np.float32 and d.labels.dtype == np.int64


def test_bad_data_is_refused_with_what_is_allowed(tmp_path: Path) -> None:
    (tmp_path / "d.txt").write_text("x")
    with pytest.raises(ValueError, match=r"allowed: \['.csv', '.npz', '.parquet'\]"):
        datasets.load(tmp_path / "d.txt")
    (tmp_path / "d.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="label column 'label' not found"):
        datasets.load(tmp_path / "d.csv")
    (tmp_path / "e.csv").write_text("a,label\nx,1\n")
    with pytest.raises(ValueError, match="numeric"):
        datasets.load(tmp_path / "e.csv")
    with pytest.raises(ValueError, match="NaN"):
        Dataset(np.array([[np.nan]], dtype=np.float32), np.array([0]))


def test_a_custom_loader_is_called_by_name(tmp_path: Path) -> None:
    d = datasets.load(tmp_path / "anything", "y", loader="tests.unit.test_federation_local:_loader")
    assert d.name == "custom:anything:y"


def _loader(path: Path, label: str) -> Dataset:
    return Dataset(X, Y, f"custom:{path.name}:{label}")


def test_splits_cover_the_data_and_dirichlet_skews_the_classes() -> None:
    digits = sklearn_dataset("digits")
    iid = split_iid(digits, 4, seed=1)
    assert sum(len(p) for p in iid) == len(digits)
    skewed = split_dirichlet(digits, 4, alpha=0.1, seed=1)
    assert sum(len(p) for p in skewed) == len(digits)

    def spread(parts: list[Dataset]) -> float:  # how unevenly classes are spread across parts
        return float(np.mean([np.std(np.bincount(p.labels, minlength=10) / len(p)) for p in parts]))

    assert spread(skewed) > 2 * spread(iid)


def _participant(**kw: object) -> Participant:
    d = sklearn_dataset("breast_cancer")
    cfg = {"type": "mlp", "layers": [30, 8, 2]}
    return Participant("Org1MSP/trainer", d, cfg, LocalTraining(epochs=2, lr=0.1, **kw))  # type: ignore[arg-type]


def _global() -> list[np.ndarray]:
    import torch

    torch.manual_seed(0)
    return encode([p.detach().numpy() for p in MLP([30, 8, 2]).state_dict().values()])


def test_fedprox_keeps_the_local_model_closer_to_the_global_one() -> None:
    plain, _ = _participant().update(_global(), 1)
    prox, report = _participant(fedprox_mu=5.0).update(_global(), 1)
    assert norm(prox) < 0.8 * norm(plain)
    assert report.samples == 569 and report.samples_per_second > 0 and report.device == "cpu"


def test_differential_privacy_clips_adds_noise_and_accounts_epsilon_per_round() -> None:
    dp = PrivateUpdates(DifferentialPrivacy(clip=1.0, noise_multiplier=1.1), seed=7)
    big = [np.full((100,), 10.0, dtype=np.float32)]
    out = dp.privatize(big, 1)
    # Clipped to norm 1, then noise of std 1.1 per coordinate: nowhere near the input.
    assert abs(float(np.linalg.norm(out[0])) - np.sqrt(1 + 100 * 1.1**2)) < 3
    eps1 = dp.epsilon
    dp.privatize(big, 2)
    assert 0 < eps1 < dp.epsilon
    resumed = PrivateUpdates(DifferentialPrivacy(clip=1.0, noise_multiplier=1.1), seed=7, rounds_done=2)
    assert resumed.epsilon == pytest.approx(dp.epsilon)
    with pytest.raises(ValueError, match="clip > 0"):
        DifferentialPrivacy(clip=0, noise_multiplier=1)


def test_rule_strings_are_parsed_and_bad_ones_named() -> None:
    one = 1 << 24  # 1.0 in fixed point
    u = [[np.array([1, 2, 3]) * one], [np.array([1, 2, 3]) * 100 * one], [np.array([2, 2, 2]) * one]]
    assert apply_rule("median", u, [1, 1, 1])[0].tolist() == [2 * one, 2 * one, 3 * one]
    bounded = apply_rule("fedavg+normbound", u, [1, 1, 1])[0]
    assert bounded.max() < apply_rule("fedavg", u, [1, 1, 1])[0].max()
    for bad in ("mean", "trimmed:x", "krum:1", "median+normbound+x"):
        with pytest.raises(ValueError, match="rule"):
            apply_rule(bad, u, [1, 1, 1])


def _updates(scale: dict[str, float], round_: int) -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(round_)
    base = rng.normal(0, 0.01, 5000)
    out = {}
    for k, s in scale.items():
        noise = np.random.default_rng(hash(k) % 1000 + round_).normal(0, 0.002, 5000)
        out[k] = encode([(base + noise) * s])
    return out


def test_a_repeatedly_unusual_participant_is_down_weighted_but_never_flagged() -> None:
    history = History()
    scale = {"A/t": 1.0, "B/t": 1.0, "C/t": 1.0, "D/t": -20.0}
    for r in (1, 2, 3, 4):
        found = assess(r, _updates(scale, r), history)
        assert found.flagged == [], "statistics are no proof: only weight and reward drop"
        assert found.scores["D/t"] == 0 and "not stake" in found.reasons["D/t"]
        assert all(found.scores[k] > 0 for k in ("A/t", "B/t", "C/t"))
    assert history.outliers["D/t"] == [1, 2, 3, 4]


def test_a_replayed_or_empty_update_is_flagged_at_once() -> None:
    history = History()
    r1 = _updates({"A/t": 1.0, "B/t": 1.0, "C/t": 1.0}, 1)
    assess(1, r1, history)
    r2 = _updates({"A/t": 1.0, "B/t": 1.0}, 2)
    r2["C/t"] = r1["A/t"]  # replays another participant's earlier update
    found = assess(2, r2, history)
    assert found.flagged == ["C/t"] and "replays the update of A/t@1" in found.reasons["C/t"]
    r3 = _updates({"A/t": 1.0, "B/t": 1.0}, 3)
    r3["C/t"] = [np.zeros(5000, dtype=np.int64)]
    assert assess(3, r3, history).flagged == ["C/t"]


def test_the_update_header_binds_task_round_and_participant() -> None:
    raw = to_bytes(encode([np.ones(3)]), {"task": "t", "round": 2, "participant": "A/t"})
    assert header(raw)["context"] == {"task": "t", "round": 2, "participant": "A/t"}
    with pytest.raises(ValueError, match="header"):
        header(b"\x05\x00\x00\x00{nope")


def test_median_keeps_a_sign_flipping_participant_from_hurting_accuracy() -> None:
    digits = sklearn_dataset("digits")
    train, test = digits.split(0.25, 0)
    cfg = {"type": "cnn", "side": 8, "classes": 10, "channels": 8}

    def run(attack: str) -> float:
        parts = split_iid(train, 4, 1)
        ps = [
            Participant(
                f"O{i}/t", p, cfg, LocalTraining(epochs=5, lr=0.1, seed=i), attack=attack if i == 3 else ""
            )
            for i, p in enumerate(parts)
        ]
        sim = Simulation.start(ps, "median", test, 0)
        for r in (1, 2, 3, 4):
            sim.round(r)
        return sim.evaluate()[1]

    clean, attacked = run(""), run("sign_flip")
    assert attacked >= clean - 0.02 and clean > 0.85


def test_with_three_updates_being_far_from_the_others_is_no_evidence() -> None:
    history = History()
    for r in (1, 2, 3):
        found = assess(r, _updates({"A/t": 1.0, "B/t": 1.0, "C/t": 20.0}, r), history)
        assert found.flagged == [] and "C/t" not in found.reasons


def test_an_unusable_revealed_update_is_flagged_at_once_with_its_reason() -> None:
    found = assess(1, _updates({"A/t": 1.0, "B/t": 1.0, "C/t": 1.0}, 1), History(), {"D/t": "wrong binding"})
    assert found.flagged == ["D/t"] and found.reasons["D/t"] == "wrong binding" and found.scores["D/t"] == 0
