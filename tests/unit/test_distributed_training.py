"""One participant's local training on several processes (DDP over gloo, on the CPU): the
same update bytes as one device with the same shards, slices that cover every row once,
failures and timeouts that stop every worker, and a rendezvous on 127.0.0.1 only."""

from __future__ import annotations

import multiprocessing.forkserver
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from fabricml.federation import fixedpoint
from fabricml.federation.data import Dataset, sklearn_dataset
from fabricml.federation.distributed import Launch, WorkerFailed, train_distributed
from fabricml.federation.training import LocalTraining, batches, parameters, slices, train
from fabricml.models.mlp import Model, build
from tests.processes import children

CNN = {"type": "cnn", "side": 8, "classes": 10, "channels": 4}
# 289 rows in batches of 32: the last batch has one row, so its second slice is empty.
ROWS = 289


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread here and in each worker: CPU kernels then sum in the same order."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return sklearn_dataset("digits").take(np.arange(ROWS))


def _model(config: dict[str, object] = CNN) -> Model:
    torch.manual_seed(5)
    return build(dict(config))


def _update(model: Model, start: list[np.ndarray]) -> list[np.ndarray]:
    return [w - s for w, s in zip(parameters(model), start, strict=True)]


def _one_device(
    data: Dataset, config: LocalTraining, model_config: dict[str, object] = CNN
) -> list[np.ndarray]:
    model = _model(model_config)
    start = parameters(model)
    train(model, data, config, 3, "cpu")
    return _update(model, start)


def _processes(
    data: Dataset, config: LocalTraining, model_config: dict[str, object] = CNN, **launch: object
) -> list[np.ndarray]:
    model = _model(model_config)
    start = parameters(model)
    report = train_distributed(model, data, config, 3, Launch(config.shards, threads=1, **launch))  # type: ignore[arg-type]
    assert report.samples == len(data) and report.device == f"{config.shards} x cpu (gloo)"
    return _update(model, start)


@pytest.mark.parametrize(
    ("model_config", "options", "nproc"),
    [
        (CNN, {}, 2),
        (CNN, {"momentum": 0.9, "fedprox_mu": 0.5}, 2),
        ({"type": "mlp", "layers": [64, 16, 10]}, {"momentum": 0.5}, 3),  # 3: the rank-ordered gather
    ],
)
def test_processes_give_the_update_bytes_of_one_device_with_the_same_shards(
    digits: Dataset, model_config: dict[str, object], options: dict[str, float], nproc: int
) -> None:
    config = LocalTraining(epochs=2, shards=nproc, **options)  # type: ignore[arg-type]
    alone = _one_device(digits, config, model_config)
    together = _processes(digits, config, model_config)
    for a, b in zip(alone, together, strict=True):
        assert a.tobytes() == b.tobytes()  # the float32 weights, bit for bit
    assert fixedpoint.to_bytes(fixedpoint.encode(alone)) == fixedpoint.to_bytes(fixedpoint.encode(together))
    assert max(float(np.abs(a).max()) for a in together) > 1e-3, "the model must have trained"


def test_against_one_unsliced_batch_one_step_differs_only_by_float_summation_order(
    digits: Dataset,
) -> None:
    one_step = LocalTraining(epochs=1, batch_size=ROWS, lr=0.5)  # every row in one batch
    together = _processes(digits, LocalTraining(epochs=1, batch_size=ROWS, lr=0.5, shards=2))
    unsliced = _one_device(digits, one_step)
    weight = max(float(np.abs(w + u).max()) for w, u in zip(parameters(_model()), unsliced, strict=True))
    gap = max(float(np.abs(a - b).max()) for a, b in zip(unsliced, together, strict=True))
    # At most 4 float32 steps (2**-23 of the value) of the largest weight: the same gradient,
    # summed in another order. Over many steps SGD amplifies such gaps (docs/federation.md).
    assert gap <= 4 * 2**-23 * weight, (gap, weight)


def test_against_unsliced_batches_the_update_stays_close_on_a_short_run(digits: Dataset) -> None:
    together = _processes(digits, LocalTraining(epochs=2, shards=2))
    unsliced = _one_device(digits, LocalTraining(epochs=2, shards=1))
    largest = max(float(np.abs(a).max()) for a in unsliced)
    gap = max(float(np.abs(a - b).max()) for a, b in zip(unsliced, together, strict=True))
    assert gap <= 1e-5 * largest, (gap, largest)  # 20 steps; measured ~2e-7 of it


def test_the_unordered_all_reduce_is_within_the_same_tolerance(digits: Dataset) -> None:
    config = LocalTraining(epochs=1, shards=3)
    alone = _one_device(digits, config)
    together = _processes(digits, config, ordered=False)
    largest = max(float(np.abs(a).max()) for a in alone)
    assert max(float(np.abs(a - b).max()) for a, b in zip(alone, together, strict=True)) <= 1e-5 * largest


@pytest.mark.parametrize(("rows", "batch_size", "nproc"), [(289, 32, 2), (100, 7, 3), (5, 4, 4), (64, 64, 2)])
def test_the_ranks_take_disjoint_slices_that_cover_every_row_each_epoch(
    rows: int, batch_size: int, nproc: int
) -> None:
    config = LocalTraining(epochs=3, batch_size=batch_size, shards=nproc)
    per_epoch = (rows + batch_size - 1) // batch_size
    everything = list(batches(rows, config, 1))
    assert len(everything) == 3 * per_epoch
    for epoch in range(3):
        seen: list[list[int]] = [[] for _ in range(nproc)]
        for batch in everything[epoch * per_epoch : (epoch + 1) * per_epoch]:
            pieces = slices(batch, nproc)
            assert len(pieces) == nproc and torch.equal(torch.cat(pieces), batch)
            assert max(map(len, pieces)) - min(map(len, pieces)) <= 1
            for rank, piece in enumerate(pieces):
                seen[rank] += piece.tolist()
        assert sorted(i for rank in seen for i in rank) == list(range(rows))
    assert [b.tolist() for b in batches(rows, config, 1)] == [b.tolist() for b in everything]
    assert [b.tolist() for b in batches(rows, config, 2)] != [b.tolist() for b in everything]


def _workers() -> list[int]:
    """The processes the fork server started (the workers) that are still alive."""
    server = multiprocessing.forkserver._forkserver._forkserver_pid  # type: ignore[attr-defined]
    return [pid for pid, state in children(server).items() if state != "Z"]


def test_a_failing_worker_is_named_and_the_others_are_stopped(digits: Dataset) -> None:
    config = LocalTraining(epochs=50, shards=2)
    labels = digits.labels.copy()
    labels[int(slices(next(batches(len(labels), config, 3)), 2)[1][0])] = 99  # rank 1's first slice
    broken = Dataset(digits.features, labels, "broken")
    model = _model()
    before = parameters(model)
    start = time.monotonic()
    failure = r"worker 1 of 2 failed: IndexError: Target 99 is out of bounds"
    with pytest.raises(WorkerFailed, match=failure) as exc:
        train_distributed(model, broken, config, 3, Launch(2, threads=1, timeout_s=300))
    assert exc.value.rank == 1 and "Traceback" in exc.value.details
    assert time.monotonic() - start < 120, "the failure must not wait for the timeout"
    assert _workers() == []
    assert all(np.array_equal(a, b) for a, b in zip(before, parameters(model), strict=True))


def test_workers_past_the_timeout_are_stopped_with_a_clear_error(digits: Dataset) -> None:
    model = _model()
    start = time.monotonic()
    with pytest.raises(WorkerFailed) as exc:
        endless = LocalTraining(epochs=5000, shards=2)
        train_distributed(model, digits, endless, 3, Launch(2, threads=1, timeout_s=3))
    # Usually the supervisor's deadline; under heavy load a collective may time out first.
    assert "not done within timeout_s=3" in str(exc.value) or "imed out" in str(exc.value), exc.value
    assert time.monotonic() - start < 60
    assert _workers() == []


def _listening(pid: int) -> list[str]:
    """The local addresses of the TCP sockets this process listens on (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                found.append(f"{table}:{fields[1].split(':')[0]}")
    return found


def test_the_rendezvous_and_the_workers_listen_on_127_0_0_1_only(digits: Dataset) -> None:
    seen: dict[str, list[str]] = {}
    steps: list[tuple[int, int]] = []

    def look(done: int, total: int) -> None:
        steps.append((done, total))
        if not seen:
            seen["supervisor"] = _listening(os.getpid())
            seen["workers"] = [address for pid in _workers() for address in _listening(pid)]

    model = _model()
    train_distributed(model, digits, LocalTraining(epochs=6, shards=2), 3, Launch(2, threads=1), look)
    assert seen["supervisor"] and seen["workers"], seen  # the store here; gloo's listeners there
    assert set(seen["supervisor"] + seen["workers"]) == {"tcp:0100007F"}, seen  # 127.0.0.1
    total = 6 * ((ROWS + 31) // 32)
    assert steps == [(i, total) for i in range(1, total + 1)]


def test_a_launch_that_cannot_give_the_defined_update_is_refused(digits: Dataset) -> None:
    model = _model()
    with pytest.raises(ValueError, match=r"config.shards \(1\) must equal launch.nproc \(2\)"):
        train_distributed(model, digits, LocalTraining(), 3, Launch(2))
    gpus = torch.cuda.device_count()
    too_few = rf"CUDA training on {gpus + 1} processes needs {gpus + 1} GPUs \(one each\), {gpus} visible"
    with pytest.raises(ValueError, match=too_few):
        train_distributed(model, digits, LocalTraining(shards=gpus + 1), 3, Launch(gpus + 1, device="cuda"))
    with pytest.raises(ValueError, match="device must be one of cpu, cuda"):
        Launch(2, device="cuda:1")
    with pytest.raises(ValueError, match="nproc must be between 1 and 64"):
        Launch(0)
    with pytest.raises(ValueError, match=r"threads >= 0 and 0 < timeout_s"):
        Launch(2, timeout_s=-1)
    with pytest.raises(ValueError, match=r"shards must be between 1 and batch_size \(32\), got 33"):
        LocalTraining(shards=33)
    with pytest.raises(ValueError, match=r"shards must be between 1 and batch_size \(32\), got 0"):
        LocalTraining(shards=0)


def test_one_process_is_plain_local_training(digits: Dataset) -> None:
    model = _model()
    start = parameters(model)
    report = train_distributed(model, digits, LocalTraining(epochs=1), 3, Launch(1))
    assert report.device == "cpu"
    assert [a.tobytes() for a in _update(model, start)] == [
        a.tobytes() for a in _one_device(digits, LocalTraining(epochs=1))
    ]
