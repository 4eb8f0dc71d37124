"""The same federated task in Flower and in fabricml, and centralized on the pooled data:
final test accuracy, round wall time, and aggregation throughput beside NumPy.

Usage: .venv/bin/python bench/federated.py [--rounds 10] [--epochs 5] [--lr 0.1] [--seed 0]
       [--batch-timeout 100ms] [--base-port 29000] [--json] [--only a|b|c]
       [--b-width 150000] [--b-rounds 2] [--b-epochs 1] [--c-rounds 3] [--c-epochs 1]
       [--c-lr 0.01] [--keep-logs DIR]

Case (a) is the digits task below; case (b) the same participants with an MLP
64-<b-width>-10 (11.25 M parameters by default): update bytes on the wire against
float32, bytes per participant, round time and phases, and peak RSS of each agent and of
Flower's Ray workers (sampled from /proc). Case (c), in bench/federated_resnet.py, is
ResNet-18 (GroupNorm, 11.17 M parameters) on the demo's synthetic 32x32 colour images
(`images32`), printed as (b) is. Without --only, (a) runs, then (b), then (c).

The task, identical on every side: scikit-learn's digits with the demo's train/test split
and IID split into 3 participants (one per org), each training on its share less the 20%
its agent keeps back as held-out rows; the demo's SmallCNN with the same initial weights
(same seed); the same local training (fabricml.federation.training.train: plain SGD,
epochs, batch 32, learning rate, per-round shuffling seeds, one torch thread); FedAvg
weighted by samples; every participant evaluates each new global model on its held-out
rows. Test accuracy is the final global model's on the demo's test set.

- Flower: `flwr.simulation.run_simulation` (Ray backend) with the message-API FedAvg
  strategy and 3 virtual SuperNodes sharing the machine's cores, so all 3 train at once as
  the 3 agents do; the initial weights are its initial ArrayRecord. A round is timed in
  the ServerApp from the end of one server-side evaluation to the start of the next
  (training, aggregation, the participants' held-out evaluation).
- fabricml: `fabricml.demo.run_demo` (rule fedavg, no serving) on a private
  3-org Raft network (ports from 29000, brought up and torn down here): one `fabricml agent
  run` process per org; protocol v2 on the ledger (commit, publish off chain, post;
  Settle off the critical path); each round's global model registered. A round is timed
  by the Federation contract's chaincode events as the bench's peer delivers them, along
  its critical path: from the quorum that agreed the round before (round 1: RoundStarted)
  to this round's quorum of AggregatePosted, split at its last UpdateCommitted; the
  blocks that carried those events are counted (the goal: 2 per round).
- Round times are compared over rounds 2.. : Flower's first round also starts its Ray
  actors, while fabricml's agents start, join and stake before round 1. Round 1 is shown.
- Centralized: the same model, initial weights and optimizer on the union of the
  participants' training rows, for rounds x epochs epochs.
- Aggregation: MB/s of fixed-point int64 updates through fabricml's fedavg and
  coordinate_median (8 updates x 1M parameters), beside NumPy's float32 sum and weighted
  mean of the same updates (float32, so half the bytes; values/s are also printed).

Flower 1.42 needs protobuf 6 and the project pins protobuf < 6 (grpcio-status < 1.72), so
the bench installs Flower, on first use, in a venv of its own with the project's NumPy:

    .venv/bin/python -m venv ~/.cache/fabricml/bench-flower-1.42.0
    ~/.cache/fabricml/bench-flower-1.42.0/bin/pip install "flwr[simulation]==1.42.0" numpy==<the project's>

and writes a .pth there that adds the project venv's site-packages after Flower's own:
the Flower half runs as a subprocess of that Python, importing torch and fabricml from
the project while Flower's protobuf and grpcio win. The project's dependencies are unchanged.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:
    from fabricml.federation.data import Dataset

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import options  # noqa: E402
from bench.peak_rss import PeakRss  # noqa: E402
from bench.timing import best_of  # noqa: E402

FLOWER_VERSION = "1.42.0"
BASE_PORT = 29000
HELDOUT = 0.2  # the agent's default share of local data kept back (AgentOptions.heldout)
BATCH_SIZE = 32  # the agent's default (`fabricml agent run --batch-size`)
GOALS = {
    "vsFlowerPoints": 0.5,
    "vsCentralizedPoints": 1.0,
    "roundTimeRatio": 2.0,
    "largeRoundTimeRatio": 1.25,
}


@dataclass(frozen=True)
class Task:
    participants: int = 3
    rounds: int = 10
    epochs: int = 5
    lr: float = 0.1
    seed: int = 0
    batch_size: int = BATCH_SIZE
    heldout: float = HELDOUT
    batch_timeout: str = "100ms"  # the orderers' (topology batchTimeout); network/topology.yaml's
    base_port: int = BASE_PORT  # the bench network's ports start here (one range per machine user)
    width: int = 0  # 0: the demo's SmallCNN; else an MLP with one hidden layer this wide (case b)
    dataset: str = "digits"  # the demo's dataset; images32 and its ResNet-18 for case (c)
    keep_logs: str = ""  # a folder to copy the agents' logs and metrics to before the teardown


# ---- the task's data and initial model, made exactly as the demo makes them ----------------


def demo_options(spec: Task, **extra: Any) -> Any:
    from fabricml.demo import DemoOptions

    return DemoOptions(
        dataset=spec.dataset,
        split="iid",
        rounds=spec.rounds,
        rule="fedavg",
        epochs=spec.epochs,
        lr=spec.lr,
        seed=spec.seed,
        serve=False,
        width=spec.width,
        **extra,
    )


def prepare(task: Task, folder: Path) -> dict[str, Any]:
    """Participant files, test set and initial weights, written for the Flower subprocess."""
    from fabricml.demo.task import initial_model, prepare_data
    from fabricml.federation.data import save_npz, sklearn_dataset
    from fabricml.federation.training import parameters

    files, test = prepare_data(demo_options(task), task.participants, folder / "data")
    model = initial_model(sklearn_dataset(task.dataset), task.seed, task.width)
    initial = folder / "initial.npz"
    np.savez(initial, *parameters(model))
    return {
        "task": asdict(task),
        "files": [str(f) for f in files],
        "test": str(save_npz(test, folder / "test.npz")),
        "initial": str(initial),
        "model": model.config(),
    }


def local_training_rows(path: str, task: Task) -> tuple[Dataset, Dataset]:
    """A participant's (training rows, held-out rows), split as its agent splits them."""
    from fabricml.federation.data import load

    return load(Path(path)).split(task.heldout, task.seed)


# ---- Flower ----------------------------------------------------------------------------


def flower_python() -> Path:
    """Flower's own venv (installed once), seeing the project's packages after its own."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    root = cache / "fabricml" / f"bench-flower-{FLOWER_VERSION}"
    python = root / "bin" / "python"
    marker = root / ".fabricml-installed"
    if not marker.exists():
        print(f"installing flwr[simulation]=={FLOWER_VERSION} into {root} (once)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(root)], check=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                f"flwr[simulation]=={FLOWER_VERSION}",
                f"numpy=={np.__version__}",
            ],
            check=True,
        )
        marker.write_text(FLOWER_VERSION + "\n")
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # site.addsitedir appends: flwr's own packages stay first; the project's .pth files
    # (the editable fabricml among them) are processed.
    project = sysconfig.get_path("purelib")
    (Path(purelib) / "zz_fabricml_project.pth").write_text(f"import site; site.addsitedir({project!r})\n")
    return python


def run_flower(spec: dict[str, Any], folder: Path, timeout: float = 480) -> dict[str, Any]:
    python = flower_python()
    spec_file, result_file, log_file = (
        folder / "flower.json",
        folder / "flower-result.json",
        folder / "flower.log",
    )
    spec_file.write_text(json.dumps({**spec, "result": str(result_file)}))
    started = time.perf_counter()
    env = {**os.environ, "FLWR_TELEMETRY_ENABLED": "0", "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0"}
    env.pop("PYTHONPATH", None)
    with log_file.open("wb") as log:
        # Its own process group, so that Ray's processes go with it whatever happens.
        proc = subprocess.Popen(
            [str(python), str(Path(__file__).resolve()), "--flower-worker", str(spec_file)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        sampler = PeakRss(lambda p: p.session == proc.pid)  # Flower's own session: Ray's processes
        try:
            proc.wait(timeout=timeout)
        finally:
            if proc.poll() is not None:
                with contextlib.suppress(ProcessLookupError):  # Ray processes left behind, if any
                    os.killpg(proc.pid, signal.SIGTERM)
            else:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
    if proc.returncode != 0 or not result_file.exists():
        tail = log_file.read_text(errors="replace")[-4000:]
        raise RuntimeError(f"the Flower simulation failed (exit {proc.returncode}); log tail:\n{tail}")
    result: dict[str, Any] = json.loads(result_file.read_text())
    result["processSeconds"] = time.perf_counter() - started
    peaks = sampler.close()
    actors = [mib for cmd, mib in peaks.values() if cmd.startswith("ray::") and "IDLE" not in cmd]
    every = [mib for _, mib in peaks.values()]
    nan = float("nan")
    result["peakRssMiB"] = {
        "largestRayWorker": max(actors, default=nan),
        "largestProcess": max(every, default=nan),
    }
    return result


@dataclass
class FlowerRun:
    """What the Flower simulation records: evaluation marks, the test curve, training times."""

    marks: list[tuple[str, int, float]] = field(default_factory=list)  # (event, round, perf_counter)
    curve: list[dict[str, Any]] = field(default_factory=list)
    training: list[float] = field(default_factory=list)

    def round_seconds(self, rounds: int) -> list[float]:
        """Round r runs from the end of the evaluation after round r-1 to the start of the one after r."""
        ends = {r: t for e, r, t in self.marks if e == "evaluated"}
        starts = {r: t for e, r, t in self.marks if e == "evaluate"}
        return [starts[r] - ends[r - 1] for r in range(1, rounds + 1) if r in starts and r - 1 in ends]


def _flower(name: str) -> Any:
    return importlib.import_module(name)


def flower_client(spec: dict[str, Any], task: Task) -> Any:
    """Flower's ClientApp: each participant trains and evaluates on its own rows."""
    import torch

    from fabricml.federation.training import LocalTraining, evaluate, load_parameters, parameters, train
    from fabricml.models.mlp import build

    app, config = _flower("flwr.app"), LocalTraining(task.epochs, task.batch_size, task.lr, seed=task.seed)
    client = _flower("flwr.clientapp").ClientApp()

    def participant(context: Any) -> tuple[Dataset, Dataset]:
        torch.set_num_threads(1)  # as each fabricml agent does
        return local_training_rows(spec["files"][int(context.node_config["partition-id"])], task)

    @client.train()  # type: ignore[untyped-decorator]
    def client_train(msg: Any, context: Any) -> Any:
        rows, _ = participant(context)
        model = build(spec["model"])
        load_parameters(model, msg.content["arrays"].to_numpy_ndarrays())
        report = train(model, rows, config, int(msg.content["config"]["server-round"]), "cpu")
        metrics = {"num-examples": len(rows), "train-loss": report.loss, "train-seconds": report.seconds}
        content = {"arrays": app.ArrayRecord(parameters(model)), "metrics": app.MetricRecord(metrics)}
        return app.Message(app.RecordDict(content), reply_to=msg)

    @client.evaluate()  # type: ignore[untyped-decorator]
    def client_evaluate(msg: Any, context: Any) -> Any:
        _, heldout = participant(context)
        model = build(spec["model"])
        load_parameters(model, msg.content["arrays"].to_numpy_ndarrays())
        loss, accuracy = evaluate(model, heldout)
        metrics = {"num-examples": len(heldout), "heldout-loss": loss, "heldout-accuracy": accuracy}
        return app.Message(app.RecordDict({"metrics": app.MetricRecord(metrics)}), reply_to=msg)

    return client


def flower_server(spec: dict[str, Any], task: Task, run: FlowerRun) -> Any:
    """Flower's ServerApp: FedAvg over every participant, the global model on the test set."""
    from fabricml.federation.data import load
    from fabricml.federation.training import evaluate, load_parameters
    from fabricml.models.mlp import build

    app, test = _flower("flwr.app"), load(Path(spec["test"]))
    with np.load(spec["initial"]) as z:
        initial = [z[f"arr_{i}"] for i in range(len(z.files))]
    server = _flower("flwr.serverapp").ServerApp()

    def central_evaluate(round_: int, arrays: Any) -> Any:
        run.marks.append(("evaluate", round_, time.perf_counter()))
        model = build(spec["model"])
        load_parameters(model, arrays.to_numpy_ndarrays())
        loss, accuracy = evaluate(model, test)
        run.curve.append({"round": round_, "testLoss": loss, "testAccuracy": accuracy})
        run.marks.append(("evaluated", round_, time.perf_counter()))
        return app.MetricRecord({"test-loss": loss, "test-accuracy": accuracy})

    @server.main()  # type: ignore[untyped-decorator]
    def server_main(grid: Any, context: Any) -> None:
        n = task.participants
        strategy = _flower("flwr.serverapp.strategy").FedAvg(
            fraction_train=1.0,
            fraction_evaluate=1.0,
            min_train_nodes=n,
            min_evaluate_nodes=n,
            min_available_nodes=n,
        )
        result = strategy.start(
            grid=grid,
            initial_arrays=app.ArrayRecord(initial),
            num_rounds=task.rounds,
            evaluate_fn=central_evaluate,
        )
        run.training.extend(float(m["train-seconds"]) for m in result.train_metrics_clientapp.values())

    return server


def flower_worker(spec_file: Path) -> None:
    """Runs under Flower's venv: a Flower simulation of the task."""
    spec = json.loads(spec_file.read_text())
    task, run = Task(**spec["task"]), FlowerRun()
    client, server = flower_client(spec, task), flower_server(spec, task, run)
    cpus = os.cpu_count() or 1
    share = int(100 * cpus / task.participants) / 100  # every participant trains at once
    started = time.perf_counter()
    _flower("flwr.simulation").run_simulation(
        server_app=server,
        client_app=client,
        num_supernodes=task.participants,
        backend_config={
            "client_resources": {"num_cpus": share, "num_gpus": 0.0},
            "init_args": {"num_cpus": cpus, "include_dashboard": False},
        },
    )
    result = {
        "version": _flower("flwr").__version__,
        "curve": run.curve,
        "roundSeconds": run.round_seconds(task.rounds),
        "localTrainingSeconds": statistics.mean(run.training) if run.training else float("nan"),
        "simulationSeconds": time.perf_counter() - started,
        "backend": "ray",
        "clientCpus": share,
    }
    Path(spec["result"]).write_text(json.dumps(result))


# ---- fabricml on a real network --------------------------------------------------------


class LedgerClock:
    """Federation events as the bench's peer delivers them, each with its arrival time and
    block number."""

    def __init__(self, profile: Any) -> None:
        from contextlib import ExitStack

        from fabricml.contracts import open_connection

        self.events: list[tuple[float, int, str, dict[str, Any]]] = []
        self._stack = ExitStack()
        self._stream = self._stack.enter_context(open_connection(profile, "auditor")).chaincode_events()
        self._thread = threading.Thread(target=self._follow, name="fedbench-events", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        try:
            for e in self._stream:
                try:
                    payload = json.loads(e.payload) if e.payload else {}
                except ValueError:
                    payload = {}
                self.events.append((time.perf_counter(), e.block_number, e.event_name, payload))
        except Exception:  # the stream ends when it is closed
            return

    def close(self) -> None:
        self._stream.close()
        self._thread.join(timeout=10)
        self._stack.close()

    def committed(self, task_id: str) -> list[str]:
        """The digests of the task's committed updates, from its UpdateCommitted events."""
        return [
            p["digest"] for _, _, n, p in self.events if n == "UpdateCommitted" and p.get("taskId") == task_id
        ]

    def rounds(self, task_id: str, quorum: int) -> list[dict[str, float]]:
        """Per round, on protocol v2's critical path: from the point the round before was
        agreed (its quorum-th AggregatePosted; round 1: RoundStarted) to this round's
        agreement, split at its last commitment; the blocks on that path (commitments,
        posts up to the quorum); and when its Settle landed, after the agreement."""
        mine = [(t, b, n, p) for t, b, n, p in self.events if p.get("taskId", p.get("id")) == task_id]
        started = next((t for t, _, n, _ in mine if n == "RoundStarted"), None)
        out: list[dict[str, float]] = []
        for r in range(1, 1 + max((int(p.get("round", 0)) for *_, p in mine), default=0)):
            of = [(t, b, n) for t, b, n, p in mine if int(p.get("round", 0)) == r]
            commits = [(t, b) for t, b, n in of if n == "UpdateCommitted"]
            posts = sorted((t, b) for t, b, n in of if n == "AggregatePosted")[:quorum]
            settled = [t for t, _, n in of if n in ("RoundFinalized", "RoundClosed")]
            if started is None or not commits or len(posts) < quorum:
                break
            agreed = posts[-1][0]
            out.append({"round": float(r), "seconds": agreed - started,
                        "trainAndCommit": max(commits)[0] - started, "aggregate": agreed - max(commits)[0],
                        "blocks": float(len({b for _, b in commits} | {b for _, b in posts})),
                        "commitBlocks": float(len({b for _, b in commits})),
                        "postBlocks": float(len({b for _, b in posts})),
                        "settleAfter": (settled[0] - agreed) if settled else float("nan")})  # fmt: skip
            started = agreed
        return out


PHASES = (
    ("trainAndCommit", "agreed r-1 -> last commit of r (adopt the global, train, commit tx)"),
    ("aggregate", "-> quorum of posts (publish, fetch, verify, aggregate, post tx)"),
)


def run_fabricml(task: Task, spec: dict[str, Any], log: Callable[[str], None]) -> dict[str, Any]:
    from bench.benchnet import bench_network
    from fabricml.demo import run_demo
    from fabricml.gateway.profile import ConnectionProfile
    from fabricml.network.network import Network
    from fabricml.network.topology import load

    started = time.perf_counter()
    with bench_network("fabricml-fedbench", task.base_port, task.batch_timeout) as state:
        up = time.perf_counter() - started
        net = Network(load(state.parent / "topology.yaml"), state)
        clock = LedgerClock(ConnectionProfile.load(state / "profiles" / "org1.json"))
        progress: list[tuple[float, int, str]] = []
        bench = os.getpid()  # the demo's agents are its children (other users run agents too)
        agents = PeakRss(lambda p: p.ppid == bench and "fabricml.cli agent run" in p.cmdline)
        try:
            opt = demo_options(task, task=f"fedbench-{os.getpid()}")
            summary = run_demo(
                net,
                opt,
                lambda m: log(f"fabricml: {m}"),
                lambda done, total, text: progress.append((time.perf_counter(), done, text)),
            )
        finally:
            time.sleep(1.0)  # the last events
            clock.close()
        folder = Path(summary["agentLogs"])
        same_data = [
            (folder / "data" / Path(f).name).read_bytes() == Path(f).read_bytes() for f in spec["files"]
        ]
        if not all(same_data):
            raise RuntimeError("the demo's participant files differ from the ones given to Flower")
        training = [
            float(m["seconds"])
            for f in sorted(folder.glob("agents/*/metrics.jsonl"))
            for m in map(json.loads, f.read_text().splitlines())
            if "seconds" in m
        ]
        rounds = clock.rounds(opt.task, task.participants // 2 + 1)
        wire = update_bytes(state, clock.committed(opt.task), task.participants, len(summary["rounds"]))
        if task.keep_logs:  # the agents' timestamped logs and metrics, for a phase breakdown
            keep = Path(task.keep_logs) / ("b" if task.width else "a" if task.dataset == "digits" else "c")
            shutil.copytree(folder, keep, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("fetched-*", "*.bin", "data"))  # fmt: skip
    return {
        "agentPeakRssMiB": sorted(m for _, m in agents.close().values()),
        "updateBytes": wire,
        "task": opt.task,
        "networkUpSeconds": up,
        "curve": summary["globalCurve"],
        "statuses": [r["status"] for r in summary["rounds"]],
        "rounds": rounds,
        "roundSeconds": [r["seconds"] for r in rounds],
        "localTrainingSeconds": statistics.mean(training) if training else float("nan"),
        "totalSeconds": time.perf_counter() - started,
    }


def update_bytes(state: Path, committed: list[str], orgs: int, rounds: int) -> dict[str, float]:
    """Update bytes as the authors' stores serve them (the agents give their copies of
    past rounds away): the mean committed update, and per participant per round the bytes
    that crossed the network, sent (= received): each update goes once to each other org."""
    held = {blob.name: blob.stat().st_size for blob in state.glob("**/sha256/*/*")}  # every store
    sizes = [held[digest] for digest in committed if digest in held]
    return {
        "updates": float(len(sizes)),
        "meanUpdate": statistics.mean(sizes) if sizes else float("nan"),
        "sentPerParticipantRound": sum(sizes) * (orgs - 1) / orgs / max(1, rounds),
    }


# ---- centralized -------------------------------------------------------------------------


def run_centralized(task: Task, spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    from fabricml.federation.data import Dataset, load
    from fabricml.federation.training import LocalTraining, evaluate, load_parameters, train
    from fabricml.models.mlp import build

    parts = [local_training_rows(f, task)[0] for f in spec["files"]]
    pooled = Dataset(
        np.concatenate([p.features for p in parts]), np.concatenate([p.labels for p in parts]), "pooled"
    )
    model = build(spec["model"])
    with np.load(spec["initial"]) as z:
        load_parameters(model, [z[f"arr_{i}"] for i in range(len(z.files))])
    torch.set_num_threads(1)
    config = LocalTraining(
        epochs=task.rounds * task.epochs, batch_size=task.batch_size, lr=task.lr, seed=task.seed
    )
    report = train(model, pooled, config, 1, "cpu")
    test = load(Path(spec["test"]))
    loss, accuracy = evaluate(model, test)
    return {
        "rows": len(pooled),
        "epochs": config.epochs,
        "testRows": len(test),
        "testLoss": loss,
        "testAccuracy": accuracy,
        "seconds": report.seconds,
    }


# ---- aggregation throughput --------------------------------------------------------------


def aggregation_throughput(updates: int = 8, size: int = 1_000_000, repeat: int = 3) -> dict[str, Any]:
    from fabricml.federation import aggregation, fixedpoint

    rng = np.random.default_rng(0)
    floats = [[rng.normal(0.0, 0.01, size).astype(np.float32)] for _ in range(updates)]
    fixed = [fixedpoint.encode(u) for u in floats]
    weights = [int(w) for w in rng.integers(300, 400, updates)]
    share = [np.float32(w / sum(weights)) for w in weights]

    def float_sum() -> np.ndarray:
        acc = floats[0][0].copy()
        for u in floats[1:]:
            acc += u[0]
        return acc

    def float_mean() -> np.ndarray:
        acc = floats[0][0] * share[0]
        for u, s in zip(floats[1:], share[1:], strict=True):
            acc += u[0] * s
        return acc

    int_mb = updates * size * 8 / 1e6
    float_mb = updates * size * 4 / 1e6
    rows = [
        (
            "fabricml fedavg (int64, exact)",
            int_mb,
            best_of(lambda: aggregation.fedavg(fixed, weights), repeat),
        ),
        ("fabricml coordinate median", int_mb, best_of(lambda: aggregation.coordinate_median(fixed), repeat)),
        ("numpy float32 sum", float_mb, best_of(float_sum, repeat)),
        ("numpy float32 weighted mean", float_mb, best_of(float_mean, repeat)),
    ]
    return {
        "updates": updates,
        "parameters": size,
        "repeat": repeat,
        "rows": [
            {
                "what": w,
                "megabytes": mb,
                "seconds": s,
                "mbPerSecond": mb / s,
                "mValuesPerSecond": updates * size / s / 1e6,
            }
            for w, mb, s in rows
        ],
    }


# ---- report ------------------------------------------------------------------------------


T = TypeVar("T")


def steady(values: list[T]) -> list[T]:
    """Rounds 2.. : Flower's first round also starts its Ray actors (fabricml's agents
    start, join and stake before round 1, outside the rounds)."""
    return values[1:] if len(values) > 1 else values


def summarize(
    task: Task, flower: dict[str, Any], fab: dict[str, Any], central: dict[str, Any], agg: dict[str, Any]
) -> dict[str, Any]:
    fab_acc = fab["curve"][-1]["testAccuracy"]
    flower_acc = flower["curve"][-1]["testAccuracy"]
    central_acc = central["testAccuracy"]
    fab_round = statistics.mean(steady(fab["roundSeconds"]))
    flower_round = statistics.mean(steady(flower["roundSeconds"]))
    vs_flower = 100 * (fab_acc - flower_acc)
    vs_central = 100 * (fab_acc - central_acc)
    ratio = fab_round / flower_round
    return {
        "task": asdict(task),
        "accuracy": {
            "fabricml": fab_acc,
            "flower": flower_acc,
            "centralized": central_acc,
            "fabricmlMinusFlowerPoints": vs_flower,
            "fabricmlMinusCentralizedPoints": vs_central,
            "flowerMinusCentralizedPoints": 100 * (flower_acc - central_acc),
            "initialFabricml": fab["curve"][0]["testAccuracy"],
            "initialFlower": flower["curve"][0]["testAccuracy"],
        },
        "roundSeconds": {
            "fabricml": fab_round,
            "flower": flower_round,
            "ratio": ratio,
            "over": "rounds 2.. (round 1 apart)" if task.rounds > 1 else "round 1",
            "fabricmlRound1": fab["roundSeconds"][0],
            "flowerRound1": flower["roundSeconds"][0],
        },
        "goals": {
            "accuracyVsFlower": abs(vs_flower) <= GOALS["vsFlowerPoints"],
            "accuracyVsCentralized": vs_central >= -GOALS["vsCentralizedPoints"],
            "roundTime": ratio <= GOALS["roundTimeRatio"],
        },
        "flower": flower,
        "fabricml": fab,
        "centralized": central,
        "aggregation": agg,
    }


def ok(flag: bool) -> str:
    return "met" if flag else "NOT met"


def seconds(values: list[float]) -> str:
    return ", ".join(f"{x:.2f}" for x in values)


def print_phases(fab: dict[str, Any]) -> None:
    print("  a fabricml round, phase by phase from the Federation contract's events (mean s):")
    rows = steady(fab["rounds"])
    for key, label in PHASES:
        print(f"    {label:70} {statistics.mean(x[key] for x in rows):5.2f}")
    blocks = [int(x["blocks"]) for x in fab["rounds"]]
    split = ", ".join(f"{int(x['commitBlocks'])}+{int(x['postBlocks'])}" for x in fab["rounds"])
    print(f"  ledger blocks per round on the critical path (goal: 2): {', '.join(map(str, blocks))} "
          f"(commitments + posts: {split})")  # fmt: skip
    lag = [x["settleAfter"] for x in rows if x["settleAfter"] == x["settleAfter"]]
    if lag:
        print(f"  Settle landed {statistics.mean(lag):.2f} s after the agreement (off the critical path)")


def print_report(r: dict[str, Any]) -> None:
    t, a, s, g = r["task"], r["accuracy"], r["roundSeconds"], r["goals"]
    fl, fab, central = r["flower"], r["fabricml"], r["centralized"]
    print(
        f"\nfederated digits: {t['participants']} participants (IID), SmallCNN, {t['rounds']} rounds x "
        f"{t['epochs']} local epochs, SGD lr {t['lr']}, batch {t['batch_size']}, seed {t['seed']}; "
        f"orderer batchTimeout {t['batch_timeout']}"
    )
    print(
        f"\nfinal test accuracy ({central['testRows']} test rows; initial model: "
        f"fabricml {a['initialFabricml']:.4f}, Flower {a['initialFlower']:.4f})"
    )
    print(f"  {'fabricml (ledger, fixed-point FedAvg)':44} {a['fabricml']:.4f}")
    print(f"  {'Flower ' + fl['version'] + ' (simulation, FedAvg)':44} {a['flower']:.4f}")
    pooled = f"centralized ({central['rows']} pooled rows, {central['epochs']} epochs)"
    print(f"  {pooled:44} {a['centralized']:.4f}")
    print(
        f"  fabricml - Flower       {a['fabricmlMinusFlowerPoints']:+6.2f} points  "
        f"(goal: within {GOALS['vsFlowerPoints']}; {ok(g['accuracyVsFlower'])})"
    )
    print(
        f"  fabricml - centralized  {a['fabricmlMinusCentralizedPoints']:+6.2f} points  "
        f"(goal: at most {GOALS['vsCentralizedPoints']} below; {ok(g['accuracyVsCentralized'])})"
    )
    print(f"  Flower - centralized    {a['flowerMinusCentralizedPoints']:+6.2f} points")
    print("  by round      " + " ".join(f"{p['round']:>6d}" for p in fab["curve"]))
    print("    fabricml    " + " ".join(f"{p['testAccuracy']:6.3f}" for p in fab["curve"]))
    print("    Flower      " + " ".join(f"{p['testAccuracy']:6.3f}" for p in fl["curve"]))

    print(f"\nround wall time, mean of {s['over']}, seconds")
    print(f"  fabricml  {s['fabricml']:7.2f}   rounds: {seconds(fab['roundSeconds'])}")
    print(f"  Flower    {s['flower']:7.2f}   rounds: {seconds(fl['roundSeconds'])}")
    print(f"  ratio     {s['ratio']:7.2f}x  (goal: at most {GOALS['roundTimeRatio']}x; {ok(g['roundTime'])})")
    print(
        f"  local training per participant per round: fabricml {fab['localTrainingSeconds']:.2f} s, "
        f"Flower {fl['localTrainingSeconds']:.2f} s"
    )
    print_phases(fab)
    print(
        f"  outside the rounds: network up {fab['networkUpSeconds']:.0f} s; the whole Flower "
        f"simulation {fl['simulationSeconds']:.1f} s (Ray and its actors started)"
    )

    agg = r["aggregation"]
    print(
        f"\naggregation throughput: {agg['updates']} updates x {agg['parameters'] / 1e6:g}M parameters, "
        f"best of {agg['repeat']}"
    )
    print(f"  {'':32} {'MB in':>6} {'ms':>7} {'MB/s':>7} {'Mvalues/s':>10} {'time vs numpy sum':>18}")
    base = next(x for x in agg["rows"] if x["what"] == "numpy float32 sum")["seconds"]
    for x in agg["rows"]:
        print(
            f"  {x['what']:32} {x['megabytes']:6.0f} {1000 * x['seconds']:7.1f} {x['mbPerSecond']:7.0f} "
            f"{x['mValuesPerSecond']:10.0f} {x['seconds'] / base:17.1f}x"
        )


def run_large(task: Task, folder: Path, log: Callable[[str], None]) -> dict[str, Any]:
    """Case (b): the same 3 participants with a model of task.width hidden units (bytes and
    time, not accuracy), in Flower and in fabricml."""
    folder.mkdir(parents=True, exist_ok=True)
    spec = prepare(task, folder)
    with np.load(spec["initial"]) as z:
        params = sum(int(z[k].size) for k in z.files)
    log(f"case (b): Flower {FLOWER_VERSION} simulation, {params / 1e6:.1f} M parameters")
    flower = run_flower(spec, folder, timeout=900)
    log("case (b): fabricml on a 3-org network")
    fab = run_fabricml(task, spec, log)
    return {"task": asdict(task), "parameters": params, "flower": flower, "fabricml": fab}


def print_large(r: dict[str, Any]) -> None:
    t, fab, fl, n = r["task"], r["fabricml"], r["flower"], r["parameters"]
    print(
        f"\ncase (b): MLP 64-{t['width']}-10 on digits, {n / 1e6:.2f} M parameters, {t['participants']} "
        f"participants, {t['rounds']} rounds x {t['epochs']} epoch(s); statuses {fab['statuses']}"
    )
    print_size_case(r)
    print(f"  local training per round: fabricml {fab['localTrainingSeconds']:.2f} s, "
          f"Flower {fl['localTrainingSeconds']:.2f} s")  # fmt: skip
    print_phases(fab)
    print_peak_rss(fab, fl)


def print_size_case(r: dict[str, Any]) -> tuple[float, float]:
    """The lines cases (b) and (c) share: bytes on the wire and sent, round wall time;
    (fabricml's, Flower's) mean steady round seconds."""
    t, fl, fab, n = r["task"], r["flower"], r["fabricml"], r["parameters"]
    wire, f32 = fab["updateBytes"], 4 * n
    fab_round, flower_round = (statistics.mean(steady(x["roundSeconds"])) for x in (fab, fl))
    from fabricml.federation.wire import FORMAT  # what the agents write

    print(f"  update on the wire: {wire['meanUpdate'] / 1e6:.1f} MB ({FORMAT}) vs float32 "
          f"{f32 / 1e6:.1f} MB: {wire['meanUpdate'] / f32:.2f}x; Flower sends float32 arrays")  # fmt: skip
    print(f"  bytes sent (= received) per participant per round: fabricml "
          f"{wire['sentPerParticipantRound'] / 1e6:.1f} MB (update to each other org); Flower "
          f"{f32 / 1e6:.1f} MB up + {f32 / 1e6:.1f} MB down (server)")  # fmt: skip
    over = "rounds 2.." if t["rounds"] > 1 else "round 1"
    print(f"  round wall time ({over}): fabricml {fab_round:.2f} s, "
          f"Flower {flower_round:.2f} s, ratio {fab_round / flower_round:.2f}x "
          f"(goal {GOALS['largeRoundTimeRatio']}x); rounds: "
          f"fabricml {seconds(fab['roundSeconds'])}, Flower {seconds(fl['roundSeconds'])}")  # fmt: skip
    return fab_round, flower_round


def print_peak_rss(fab: dict[str, Any], fl: dict[str, Any]) -> None:
    rss, agents = fl["peakRssMiB"], ", ".join(f"{m:.0f}" for m in fab["agentPeakRssMiB"])
    print(
        f"  peak RSS: fabricml agents {agents} MiB; Flower's largest Ray worker "
        f"{rss['largestRayWorker']:.0f} MiB, largest process {rss['largestProcess']:.0f} MiB"
    )


def parse_args() -> argparse.Namespace:
    parser = options.parser(__doc__)
    parser.add_argument("--rounds", type=int, default=Task.rounds)
    parser.add_argument("--epochs", type=int, default=Task.epochs)
    parser.add_argument("--lr", type=float, default=Task.lr)
    parser.add_argument("--seed", type=int, default=Task.seed)
    parser.add_argument("--batch-timeout", default=Task.batch_timeout, help="the network's batchTimeout")
    parser.add_argument("--base-port", type=int, default=BASE_PORT, help="the bench network's first port")
    options.add_json(parser)
    parser.add_argument(
        "--only",
        choices=("a", "b", "c"),
        help="run one case: (a) digits SmallCNN, (b) a large MLP, (c) ResNet-18",
    )
    parser.add_argument("--b-width", type=int, default=150_000, help="case (b)'s hidden units (74 per unit)")
    parser.add_argument("--b-rounds", type=int, default=2)
    parser.add_argument("--b-epochs", type=int, default=1)
    parser.add_argument("--c-rounds", type=int, default=3)
    parser.add_argument("--c-epochs", type=int, default=1)
    parser.add_argument("--c-lr", type=float, default=0.01)
    parser.add_argument("--keep-logs", default="", help="copy the agents' logs and metrics to this folder")
    parser.add_argument("--flower-worker", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args()


def images_case(task: Task, args: argparse.Namespace) -> Task:
    """Case (c) (bench/federated_resnet.py): ResNet-18 on the synthetic 32x32 images."""
    from bench.federated_resnet import images_task

    return images_task(task, args.c_rounds, args.c_epochs, args.c_lr)


def run_images(task: Task, folder: Path, log: Callable[[str], None]) -> dict[str, Any]:
    from bench.federated_resnet import run_images as run_c

    return run_c(task, folder, log)


def print_images(r: dict[str, Any]) -> None:
    from bench.federated_resnet import print_images as print_c

    print_c(r)


def main() -> None:
    args = parse_args()
    if args.flower_worker:
        flower_worker(args.flower_worker)
        return
    task = Task(
        rounds=args.rounds,
        epochs=args.epochs,
        lr=args.lr,
        seed=args.seed,
        batch_timeout=args.batch_timeout,
        base_port=args.base_port,
        keep_logs=args.keep_logs,
    )
    begun = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - begun:6.1f}s] {message}", file=sys.stderr, flush=True)

    large = dataclasses.replace(task, width=args.b_width, rounds=args.b_rounds, epochs=args.b_epochs)
    images = images_case(task, args)
    if args.only == "c":
        with tempfile.TemporaryDirectory(prefix="fedbench-") as tmp:
            result = run_images(images, Path(tmp), log)
        print(json.dumps(result, indent=1)) if args.json else print_images(result)
        return
    if args.only == "b":
        with tempfile.TemporaryDirectory(prefix="fedbench-") as tmp:
            result = run_large(large, Path(tmp), log)
        print(json.dumps(result, indent=1)) if args.json else print_large(result)
        return
    with tempfile.TemporaryDirectory(prefix="fedbench-") as tmp:
        spec = prepare(task, Path(tmp))
        log("aggregation throughput")
        agg = aggregation_throughput()
        log("centralized training on the pooled rows")
        central = run_centralized(task, spec)
        log(f"Flower {FLOWER_VERSION} simulation")
        flower = run_flower(spec, Path(tmp))
        log("fabricml on a 3-org network")
        fab = run_fabricml(task, spec, log)
        report = summarize(task, flower, fab, central, agg)
        if args.only is None:
            report["large"] = run_large(large, Path(tmp) / "b", log)
            report["images"] = run_images(images, Path(tmp) / "c", log)
    report["benchSeconds"] = time.perf_counter() - begun
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print_report(report)
        if "large" in report:
            print_large(report["large"])
        if "images" in report:
            print_images(report["images"])


if __name__ == "__main__":
    main()
