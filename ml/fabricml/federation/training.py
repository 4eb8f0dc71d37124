"""Local training on an org's private data, in PyTorch (CUDA when present), and the
conversion between a model's parameters and fixed-point updates."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from . import fixedpoint
from .data import Dataset
from .fixedpoint import Update

NEXT_GLOBAL_CHUNK = 1 << 18  # values of next_global's (and global_parameters') intermediates in flight


@dataclass(frozen=True)
class LocalTraining:
    """How each participant trains per round. fedprox_mu > 0 adds FedProx's proximal term
    (mu/2)·||w - w_global||², which keeps non-IID participants near the global model.
    shards > 1 computes each batch's gradient as the sum of that many slices' gradients,
    as DDP on `shards` processes does (fabricml.federation.distributed): one device with
    the same shards reproduces a multi-GPU update bit for bit."""

    epochs: int = 2
    batch_size: int = 32
    lr: float = 0.1
    momentum: float = 0.0
    fedprox_mu: float = 0.0
    seed: int = 0
    shards: int = 1

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.fedprox_mu < 0:
            raise ValueError(
                f"local training needs epochs >= 1, batch_size >= 1, lr > 0, fedprox_mu >= 0: {self}"
            )
        if not 1 <= self.shards <= self.batch_size:
            raise ValueError(
                f"shards must be between 1 and batch_size ({self.batch_size}), got {self.shards}"
            )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TrainingReport:
    samples: int
    loss: float
    seconds: float
    samples_per_second: float
    device: str


def parameters(model: nn.Module) -> list[np.ndarray]:
    """Parameters in state-dict order, as float32 arrays on the host."""
    return [v.detach().cpu().numpy().astype(np.float32) for v in model.state_dict().values()]


def load_parameters(model: nn.Module, arrays: list[np.ndarray]) -> None:
    keys = list(model.state_dict())
    if len(keys) != len(arrays):
        raise ValueError(f"model has {len(keys)} tensors, got {len(arrays)} arrays")
    model.load_state_dict(
        {k: torch.from_numpy(np.asarray(a, dtype=np.float32)) for k, a in zip(keys, arrays, strict=True)}
    )


def global_parameters(global_fp: Update) -> list[np.ndarray]:
    """The float32 model every org derives from the agreed fixed-point global model:
    fixedpoint.decode's float64 values rounded to float32, a chunk at a time (no whole
    float64 copy of an 11 M-parameter model)."""
    out = []
    for q in global_fp:
        f = np.empty(np.shape(q), dtype=np.float32)
        qf, ff = np.asarray(q, dtype=np.int64).reshape(-1), f.reshape(-1)
        for i in range(0, ff.size, NEXT_GLOBAL_CHUNK):
            y = qf[i : i + NEXT_GLOBAL_CHUNK].astype(np.float64)
            y /= 1 << fixedpoint.SCALE_BITS
            ff[i : i + NEXT_GLOBAL_CHUNK] = y  # float64 to float32: round to nearest, as astype
        out.append(f)
    return out


def next_global(global_fp: Update, aggregate: Update) -> Update:
    """global + aggregate, passed through float32 so that the registered (float32) model
    encodes back to exactly this fixed-point model: the registry holds the truth.
    Exactly fixedpoint.encode(global_parameters(global + aggregate)) (_next_global_before
    spells that out), in three passes over a cache-sized chunk instead of nine.

    Why: let x = g + a (int64, wrapping alike). The old formula takes y = fl64(x) / 2**24,
    rounds it to float32, clips to +-CLIP, multiplies by 2**24 and rounds to an integer.
    Where |x| <= B = CLIP * 2**24 = 2**32, fl64(x) = x, and rounding x * 2**-24 to float32
    is rounding x to float32 and scaling by 2**-24 (a power of two, with every value in
    float32's normal range: 2**-24 <= |y| <= 2**8), so the result is float32(x) times
    2**-24 times 2**24: float32(x) itself, an integer (x is one, and rounding an integer to
    24 significant bits leaves one), which rint keeps. Where |x| > B, y rounds to at least
    CLIP in magnitude (rounding is monotone and CLIP is a float32), so the result is +-B,
    which is float32(clip(x, -B, B)) too. Hence next = float32(clip(fl64(x), -B, B)) as
    an integer: x is converted to float64 as it is summed (exact below 2**53; beyond, it
    clips to B either way), clipped into float32 (clip and float32 rounding commute: both
    are monotone and +-B are float32s) and cast back to int64 (exact: |value| <= 2**32).
    tests/unit/test_outcome_work.py compares both at ties, the clip and 2**24..2**60."""
    bound = fixedpoint.CLIP * (1 << fixedpoint.SCALE_BITS)
    wide = np.empty(NEXT_GLOBAL_CHUNK, dtype=np.float64)
    narrow = np.empty(NEXT_GLOBAL_CHUNK, dtype=np.float32)
    out = []
    for g, a in zip(global_fp, aggregate, strict=True):
        q = np.empty(np.shape(g), dtype=np.int64)
        gf, af, qf = np.asarray(g).reshape(-1), np.asarray(a).reshape(-1), q.reshape(-1)
        for i in range(0, qf.size, NEXT_GLOBAL_CHUNK):
            into = qf[i : i + NEXT_GLOBAL_CHUNK]
            x, y = wide[: into.size], narrow[: into.size]
            np.add(gf[i : i + NEXT_GLOBAL_CHUNK], af[i : i + NEXT_GLOBAL_CHUNK], out=x, dtype=np.int64,
                   casting="unsafe")  # fmt: skip
            np.clip(x, -bound, bound, out=y, casting="unsafe")
            np.copyto(into, y, casting="unsafe")
        out.append(q)
    return out


def _next_global_before(global_fp: Update, aggregate: Update) -> Update:
    """next_global as it was computed before (nine passes): kept for the test of equality."""
    out = []
    for g, a in zip(global_fp, aggregate, strict=True):
        x = np.add(np.asarray(g).reshape(-1), np.asarray(a).reshape(-1), dtype=np.int64)
        y = x.astype(np.float64)
        y /= 1 << fixedpoint.SCALE_BITS  # fixedpoint.decode
        z = y.astype(np.float32).astype(np.float64)  # global_parameters, then encode's float64
        np.clip(z, -fixedpoint.CLIP, fixedpoint.CLIP, out=z)
        z *= 1 << fixedpoint.SCALE_BITS
        np.rint(z, out=z)
        out.append(z.astype(np.int64).reshape(np.shape(g)))
    return out


def batches(rows: int, config: LocalTraining, round_: int) -> Iterator[torch.Tensor]:
    """The row indices of every batch of one round's local training, in order: a fresh
    permutation per epoch, seeded by the participant's seed and the round."""
    generator = torch.Generator().manual_seed(config.seed * 100_003 + round_)
    for _ in range(config.epochs):
        yield from torch.split(torch.randperm(rows, generator=generator), config.batch_size)


def slices(batch: torch.Tensor, shards: int) -> tuple[torch.Tensor, ...]:
    """A batch cut into `shards` contiguous slices, the first ones longer by at most one
    row (a short last batch may leave the last slices empty)."""
    return torch.tensor_split(batch, shards)


def proximal_term(model: nn.Module, anchor: list[torch.Tensor], mu: float) -> torch.Tensor:
    prox = sum(((p - a) ** 2).sum() for p, a in zip(model.parameters(), anchor, strict=True))
    return mu / 2 * prox  # type: ignore[return-value]


def backward_slice(
    model: nn.Module, rows: tuple[torch.Tensor, torch.Tensor], batch_rows: int, prox: torch.Tensor | None
) -> float:
    """Accumulates one slice's share of its batch's gradient: the summed cross-entropy over
    the slice / the batch's rows (+ the proximal term, on one slice only), so the slices'
    gradients add up to the batch mean's. Returns that share of the loss x batch_rows."""
    x, y = rows
    loss = nn.functional.cross_entropy(model(x), y, reduction="sum") / batch_rows
    if prox is not None:
        loss = loss + prox
    torch.autograd.backward(loss)
    return float(loss.detach()) * batch_rows


def slice_seed(config: LocalTraining, round_: int, step: int, slice_: int) -> int:
    """The torch seed before a slice's forward pass: dropout draws the same masks whichever
    process computes the slice."""
    return ((config.seed * 100_003 + round_) * 1_000_003 + step) * 1_009 + slice_


def train(
    model: nn.Module,
    data: Dataset,
    config: LocalTraining,
    round_: int,
    device: str,
    progress: Callable[[int, int], None] | None = None,
) -> TrainingReport:
    """SGD for config.epochs over the data, from the model's current (global) weights."""
    model.to(device).train()
    anchor = [p.detach().clone() for p in model.parameters()] if config.fedprox_mu else []
    x = torch.from_numpy(data.features).to(device)
    y = torch.from_numpy(data.labels).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    loss_fn = nn.CrossEntropyLoss()
    steps = config.epochs * ((len(data) + config.batch_size - 1) // config.batch_size)
    total_loss, seen = 0.0, 0
    start = time.perf_counter()
    for step, batch in enumerate(batches(len(data), config, round_)):
        batch = batch.to(device)
        opt.zero_grad()
        if config.shards == 1:
            loss = loss_fn(model(x[batch]), y[batch])
            if anchor:
                loss = loss + proximal_term(model, anchor, config.fedprox_mu)
            loss.backward()
            total_loss += float(loss.detach()) * len(batch)
        else:
            for i, piece in enumerate(slices(batch, config.shards)):
                torch.manual_seed(slice_seed(config, round_, step, i))
                prox = proximal_term(model, anchor, config.fedprox_mu) if anchor and i == 0 else None
                total_loss += backward_slice(model, (x[piece], y[piece]), len(batch), prox)
        opt.step()
        seen += len(batch)
        if progress:
            progress(step + 1, steps)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    model.eval()
    return TrainingReport(len(data), total_loss / max(seen, 1), seconds, seen / max(seconds, 1e-9), device)


@torch.inference_mode()
def evaluate(model: nn.Module, data: Dataset, device: str = "cpu") -> tuple[float, float]:
    """(mean cross-entropy loss, accuracy) on data."""
    model.to(device).eval()
    logits = model(torch.from_numpy(data.features).to(device))
    labels = torch.from_numpy(data.labels).to(device)
    loss = float(nn.functional.cross_entropy(logits, labels))
    return loss, float((logits.argmax(dim=1) == labels).float().mean())
