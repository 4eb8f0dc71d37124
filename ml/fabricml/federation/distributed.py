"""One participant's local training on several processes with PyTorch DDP: one GPU each
(NCCL) or CPU cores (gloo), rendezvous on 127.0.0.1 only, the same batches as on one
device, each batch cut into one slice per process (LocalTraining.shards = processes).

The update is bit-identical to one device training with the same LocalTraining
(shards included): every process computes its slice's gradient exactly as one device
computes that slice, and the slices' gradients are summed in rank order, as one
device accumulates them (docs/federation.md, "Training on several GPUs")."""

# No `from __future__ import annotations`: DDP checks its hooks' annotations as objects.
import ctypes
import json
import multiprocessing
import os
import queue
import signal
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from torch._C._distributed_c10d import GradBucket, TCPStore  # typed here, not in torch.distributed
from torch.nn.parallel import DistributedDataParallel

from fabricml.models.mlp import Model, build, save

from .data import Dataset
from .training import (
    LocalTraining,
    TrainingReport,
    backward_slice,
    batches,
    proximal_term,
    slice_seed,
    slices,
    train,
)

LOOPBACK = "127.0.0.1"
DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class Launch:
    """How to run one participant's local training: nproc processes on `device` ("cpu":
    gloo; "cuda": NCCL, process r on cuda:r, so nproc GPUs must be visible). threads: torch
    threads per process (0: the machine's cores / nproc). timeout_s bounds the whole run
    and every collective. ordered: sum the slices' gradients in rank order (bit-identical
    to one device); False uses the backend's all-reduce, whose order is its own above two
    processes."""

    nproc: int
    device: str = "cpu"
    threads: int = 0
    timeout_s: float = 3600.0
    ordered: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.nproc <= 64:
            raise ValueError(f"nproc must be between 1 and 64, got {self.nproc}")
        if self.device not in DEVICES:
            raise ValueError(
                f"device must be one of {', '.join(DEVICES)} (process r takes cuda:r; "
                f"choose GPUs with CUDA_VISIBLE_DEVICES), got {self.device!r}"
            )
        if self.threads < 0 or not 0 < self.timeout_s <= 7 * 86400:
            raise ValueError(f"threads >= 0 and 0 < timeout_s <= 7 days are needed: {self}")

    @property
    def backend(self) -> str:
        return "nccl" if self.device == "cuda" else "gloo"

    def threads_per_process(self) -> int:
        return self.threads or max(1, (os.cpu_count() or 1) // self.nproc)


class WorkerFailed(RuntimeError):
    """A training process failed, died or ran past the launch's timeout; every other one
    was stopped. rank is None when no single process is to blame (a timeout)."""

    def __init__(self, rank: int | None, nproc: int, reason: str, details: str = "") -> None:
        who = f"worker {rank} of {nproc}" if rank is not None else f"{nproc} workers"
        super().__init__(f"local training on {who} failed: {reason}")
        self.rank, self.reason, self.details = rank, reason, details


@dataclass(frozen=True)
class _Job:
    """What every worker needs; the data and the model travel as files in folder."""

    folder: str
    port: int
    config: LocalTraining
    round_: int
    launch: Launch
    progress: bool


def train_distributed(
    model: Model,
    data: Dataset,
    config: LocalTraining,
    round_: int,
    launch: Launch,
    progress: Callable[[int, int], None] | None = None,
) -> TrainingReport:
    """fabricml.federation.training.train on launch.nproc processes: the model ends with
    the weights rank 0 trained (on the CPU). Raises ValueError when config.shards is not
    launch.nproc or the GPUs are too few, WorkerFailed when a worker fails or times out."""
    check(config, launch)
    if launch.nproc == 1:
        return train(model, data, config, round_, launch.device, progress)
    with tempfile.TemporaryDirectory(prefix="fabricml-ddp-") as tmp:
        folder = Path(tmp)  # 0700: the org's rows stay the org's
        save(model.cpu(), folder / "model")
        np.save(folder / "features.npy", data.features, allow_pickle=False)
        np.save(folder / "labels.npy", data.labels, allow_pickle=False)
        port, store = _loopback_store(timedelta(seconds=launch.timeout_s))
        try:
            job = _Job(tmp, port, config, round_, launch, progress is not None)
            _supervise(job, progress)
        finally:
            del store  # stops the rendezvous server and closes its socket
        model.load_state_dict(load_file(folder / "trained.safetensors"))
        report = json.loads((folder / "report.json").read_text())
    model.eval()
    return TrainingReport(**report)


def check(config: LocalTraining, launch: Launch) -> None:
    """Refuses a launch that cannot give the update LocalTraining defines."""
    if config.shards != launch.nproc:
        raise ValueError(
            f"config.shards ({config.shards}) must equal launch.nproc ({launch.nproc}): the "
            f"update is defined by how each batch is cut, one slice per process"
        )
    if launch.device == "cuda" and torch.cuda.device_count() < launch.nproc:
        raise ValueError(
            f"CUDA training on {launch.nproc} processes needs {launch.nproc} GPUs (one each), "
            f"{torch.cuda.device_count()} visible"
        )


def _loopback_store(timeout: timedelta) -> tuple[int, TCPStore]:
    """The rendezvous server, here, on a socket bound to 127.0.0.1 (TCPStore alone would
    listen on every interface). Returns its port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((LOOPBACK, 0))
        sock.listen(128)
        port = int(sock.getsockname()[1])
    except OSError:
        sock.close()
        raise
    fd = sock.detach()  # the store owns the socket from here on and closes it
    store = TCPStore(
        LOOPBACK, port, None, True, timeout, wait_for_workers=False, master_listen_fd=fd, use_libuv=True
    )
    return port, store


def _supervise(job: _Job, progress: Callable[[int, int], None] | None) -> None:
    """Starts the workers and waits for all of them, relaying rank 0's progress; stops
    every one of them when one fails, on the timeout, or when progress raises."""
    multiprocessing.set_forkserver_preload(_preload())
    context = multiprocessing.get_context("forkserver")
    events = context.Queue()
    workers = [
        context.Process(target=_worker, args=(rank, job, events), name=f"fabricml-ddp-{rank}")
        for rank in range(job.launch.nproc)
    ]
    deadline = time.monotonic() + job.launch.timeout_s
    try:
        for worker in workers:
            worker.start()
        running = {worker.sentinel: worker for worker in workers}
        while running:
            for sentinel in wait(list(running), timeout=0.1):
                running.pop(cast(int, sentinel)).join()
            _relay(events, progress)
            if any(worker.exitcode for worker in workers):
                raise _failure(Path(job.folder), workers)
            if running and time.monotonic() > deadline:
                raise WorkerFailed(None, len(workers), f"not done within timeout_s={job.launch.timeout_s:g}")
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.kill()
            if worker.pid is not None:
                worker.join()
        events.close()


def _failure(folder: Path, workers: Sequence[BaseProcess]) -> WorkerFailed:
    """The first worker to fail (the others often fail because it did: a closed connection)."""
    failures = []
    for rank, worker in enumerate(workers):
        path = folder / f"failed-{rank}.txt"
        if path.exists():
            when, _, trace = path.read_text().partition("\n")
            lines = [line for line in trace.splitlines() if line.strip()]
            failures.append((int(when), rank, lines[-1] if lines else "raised", trace))
        elif worker.exitcode:
            how = worker.exitcode if worker.exitcode > 0 else signal.Signals(-worker.exitcode).name
            failures.append((time.monotonic_ns(), rank, f"died ({how})", ""))
    _, rank, reason, trace = min(failures)
    others = "".join(f"\nworker {r}: {why}" for _, r, why, _ in sorted(failures) if r != rank)
    return WorkerFailed(rank, len(workers), reason, trace + others)


def _preload() -> list[str]:
    """What the fork server imports once, so that workers of later rounds start in
    milliseconds: torch and the fabricml modules this process uses (each worker re-runs
    the __main__ script, e.g. the agent's CLI: its imports are then already done)."""
    ours = sorted(name for name in sys.modules if name.split(".")[0] == "fabricml")
    return ["torch", "torch._dynamo", __name__, *ours]  # DDP imports torch._dynamo: seconds


def _relay(events: Any, progress: Callable[[int, int], None] | None) -> None:
    while True:
        try:
            done, steps = events.get_nowait()
        except queue.Empty:
            return
        if progress:
            progress(done, steps)


def _worker(rank: int, job: _Job, events: Any) -> None:
    _die_with_parent()
    launch = job.launch
    os.environ["GLOO_SOCKET_IFNAME"] = os.environ["NCCL_SOCKET_IFNAME"] = "lo"  # loopback only
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
    torch.set_num_threads(launch.threads_per_process())
    try:
        device = _join_group(rank, job)
        report = _train_rank(rank, job, device, events)
        if rank == 0:
            (Path(job.folder) / "report.json").write_text(json.dumps(asdict(report)))
        dist.destroy_process_group()
    except BaseException:
        # When it failed comes first: the supervisor names the first worker to fail.
        trace = traceback.format_exc()
        (Path(job.folder) / f"failed-{rank}.txt").write_text(f"{time.monotonic_ns()}\n{trace}")
        raise


def _join_group(rank: int, job: _Job) -> str:
    """This worker's device, once every worker has joined the process group."""
    launch, timeout = job.launch, timedelta(seconds=job.launch.timeout_s)
    device = "cpu"
    if launch.device == "cuda":
        device = f"cuda:{rank}"
        torch.cuda.set_device(rank)
        deterministic_cuda()
    store = TCPStore(LOOPBACK, job.port, is_master=False, timeout=timeout)
    dist.init_process_group(launch.backend, store=store, rank=rank, world_size=launch.nproc, timeout=timeout)
    return device


def deterministic_cuda() -> None:
    """cuDNN and cuBLAS choose deterministic kernels (set CUBLAS_WORKSPACE_CONFIG before
    CUDA starts); ops without one warn."""
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)


def _train_rank(rank: int, job: _Job, device: str, events: Any) -> TrainingReport:
    """This rank's part of training.train: its slice of every batch; DDP sums the gradients."""
    folder, config, nproc = Path(job.folder), job.config, job.launch.nproc
    model = build(json.loads((folder / "model" / "config.json").read_text()))
    model.load_state_dict(load_file(folder / "model" / "model.safetensors"))
    model.to(device).train()
    ddp = DistributedDataParallel(model, device_ids=[rank] if device != "cpu" else None)
    ddp.register_comm_hook(None, _ordered_sum if job.launch.ordered else _sum)
    anchor = [p.detach().clone() for p in model.parameters()] if config.fedprox_mu else []
    x = torch.from_numpy(np.load(folder / "features.npy", mmap_mode="c")).to(device)
    y = torch.from_numpy(np.load(folder / "labels.npy", mmap_mode="c")).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    steps = config.epochs * ((len(y) + config.batch_size - 1) // config.batch_size)
    totals = torch.zeros(2, dtype=torch.float64, device=device)  # loss x rows, rows
    dist.barrier()
    start = time.perf_counter()
    for step, batch in enumerate(batches(len(y), config, job.round_)):
        piece = slices(batch, nproc)[rank].to(device)
        opt.zero_grad()
        torch.manual_seed(slice_seed(config, job.round_, step, rank))
        prox = proximal_term(model, anchor, config.fedprox_mu) if anchor and rank == 0 else None
        totals[0] += backward_slice(ddp, (x[piece], y[piece]), len(batch), prox)
        totals[1] += len(piece)
        opt.step()
        if job.progress and rank == 0:
            events.put((step + 1, steps))
    if device != "cpu":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    dist.all_reduce(totals)
    if rank == 0:
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, folder / "trained.safetensors")
    loss, seen = float(totals[0]), float(totals[1])
    where = f"{nproc} x {job.launch.device} ({job.launch.backend})"
    return TrainingReport(len(y), loss / max(seen, 1.0), seconds, seen / max(seconds, 1e-9), where)


def _sum(_: object, bucket: GradBucket) -> torch.futures.Future[torch.Tensor]:
    """The slices' gradients summed (not averaged, as DDP would: each slice's loss is
    already divided by its batch's rows), in the backend's order."""
    work = dist.all_reduce(bucket.buffer(), async_op=True)
    return work.get_future().then(lambda fut: fut.value()[0])


def _ordered_sum(_: object, bucket: GradBucket) -> torch.futures.Future[torch.Tensor]:
    """((g0 + g1) + g2) + ...: rank order, as one device accumulates its slices. Two
    ranks need no more than an all-reduce (a + b == b + a); more gather every rank's."""
    world = dist.get_world_size()
    if world <= 2:
        return _sum(_, bucket)
    buffer = bucket.buffer()
    parts = [torch.empty_like(buffer) for _ in range(world)]
    work = dist.all_gather(parts, buffer, async_op=True)

    def total(_: torch.futures.Future[Any]) -> torch.Tensor:
        acc = parts[0].clone()
        for part in parts[1:]:
            acc += part
        return acc

    return work.get_future().then(total)


def _die_with_parent() -> None:
    """A worker must not outlive the process that started it (Linux: PR_SET_PDEATHSIG)."""
    parent = os.getppid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:
        os._exit(1)
