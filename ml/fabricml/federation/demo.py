"""The federated demo: a consortium trains one model across its orgs on the real network,
approves the result, serves it with attested receipts, and tells the user where to look.

Each participant is a separate `fabricml agent run` process with its own private data
file; this module only plays the org admins (tokens, initial model, task, start,
approvals) and watches the ledger."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from fabricml.gateway import sync
from fabricml.gateway.profile import ConnectionProfile
from fabricml.models.cnn import SmallCNN
from fabricml.models.mlp import MLP, load, save
from fabricml.network.network import Network
from fabricml.registry.connect import open_registry

from .agent import model_name, round_ref
from .agent import submit as submit_with_retry
from .data import Dataset, save_npz, sklearn_dataset, split_dirichlet, split_iid
from .training import evaluate

INFERENCE_PORT_OFFSET = 41
Log = Callable[[str], None]


@dataclass
class DemoOptions:
    dataset: str = "digits"
    split: str = "iid"  # or "dirichlet"
    alpha: float = 0.5
    rounds: int = 4
    rule: str = "median"
    participants_per_org: int = 1
    participants: list[str] = field(default_factory=list)  # "org/identity"; overrides participants_per_org
    stake: int = 100
    reward_per_round: int = 30
    epochs: int = 5
    lr: float = 0.1
    seed: int = 0
    phase_seconds: int = 300
    reveal_seconds: int = 0  # 0: phase_seconds
    task: str = field(default_factory=lambda: f"demo-{uuid.uuid4().hex[:6]}")
    serve: bool = True
    agent_args: list[str] = field(default_factory=list)  # e.g. --fedprox-mu 0.1, --dp-clip 1


@dataclass
class Consortium:
    """The org admins' and auditors' Gateway connections, opened once."""

    net: Network
    stack: ExitStack
    contracts: dict[tuple[str, str, str], sync.Contract] = field(default_factory=dict)

    def profile(self, org: str) -> ConnectionProfile:
        return ConnectionProfile.load(self.net.layout.profile(self.net.topology.org(org)))

    def contract(self, org: str, identity: str, name: str) -> sync.Contract:
        key = (org, identity, name)
        if key not in self.contracts:
            profile = self.profile(org)
            ident, signer, hash_ = profile.identity(identity)
            channel = self.stack.enter_context(profile.peer().sync_channel())
            gateway = sync.connect(channel, ident, signer, hash_)
            network = gateway.get_network(profile.channel_name)
            self.contracts[key] = network.get_contract(profile.chaincode_name, name)
        return self.contracts[key]

    def call(self, org: str, identity: str, name: str, fn: str, *args: str, submit: bool = True) -> Any:
        c = self.contract(org, identity, name)
        raw = submit_with_retry(c, fn, *args) if submit else c.evaluate_transaction(fn, *args)
        return json.loads(raw) if raw else None

    @property
    def orgs(self) -> list[str]:
        return [o.name for o in self.net.topology.organizations]


@contextmanager
def consortium(net: Network) -> Iterator[Consortium]:
    with ExitStack() as stack:
        yield Consortium(net, stack)


def initial_model(dataset: Dataset, seed: int) -> MLP | SmallCNN:
    torch.manual_seed(seed)
    classes = int(dataset.labels.max()) + 1
    if dataset.name == "digits":
        return SmallCNN(8, classes, channels=8)
    return MLP([dataset.features.shape[1], 32, classes])


def ensure_tokens(c: Consortium, needed: int, log: Log) -> None:
    """Mint what each org needs to stake and escrow, by a majority vote of member admins."""
    voters = c.orgs[: len(c.orgs) // 2 + 1]
    for org in c.orgs:
        msp = c.net.topology.org(org).msp_id
        have = int(c.call(org, "auditor", "Token", "GetBalance", msp, submit=False)["amount"])
        if have >= needed:
            continue
        vote = f"demo-{uuid.uuid4().hex[:8]}"
        for voter in voters:
            c.call(voter, "admin", "Token", "VoteMint", vote, msp, str(needed - have))
        log(f"minted {needed - have} tokens for {msp} (votes of {', '.join(voters)})")


def prepare_data(opt: DemoOptions, parts: int, folder: Path) -> tuple[list[Path], Dataset]:
    """Each participant's private file, and the test set the demo keeps for itself."""
    data = sklearn_dataset(opt.dataset)
    train, test = data.split(0.25, opt.seed)
    if opt.split == "iid":
        shares = split_iid(train, parts, opt.seed)
    elif opt.split == "dirichlet":
        shares = split_dirichlet(train, parts, opt.alpha, opt.seed)
    else:
        raise ValueError(f"split must be iid or dirichlet, got {opt.split!r}")
    return [save_npz(s, folder / f"participant-{i + 1}.npz") for i, s in enumerate(shares)], test


def ensure_trainer(c: Consortium, org: str, name: str) -> None:
    """Enroll `name` at the org's CA with role=trainer unless the org already has it."""
    from fabricml.network.identities import CertificateAuthority, IdentitySpec

    if name in c.profile(org).identities():
        return
    ca = CertificateAuthority(c.net.binaries, c.net.layout, c.net.topology.org(org))
    secret = uuid.uuid4().hex
    ca.register(IdentitySpec(name, "client", "trainer"), secret=secret)
    ca.enroll(IdentitySpec(name, "client"), secret=secret)


def trainer_identities(c: Consortium, opt: DemoOptions) -> list[tuple[str, str]]:
    """(org, identity) of every participant: the listed ones, or `trainer`, trainer2,
    trainer3... of every org, enrolled with role=trainer when missing."""
    wanted = [tuple(p.split("/", 1)) for p in opt.participants] or [
        (org, "trainer" if i == 0 else f"trainer{i + 1}")
        for org in c.orgs
        for i in range(opt.participants_per_org)
    ]
    out = []
    for spec in wanted:
        if len(spec) != 2 or spec[0] not in c.orgs:
            raise ValueError(
                f"participant {'/'.join(spec)!r}: expected org/identity with org one of {c.orgs}"
            )
        ensure_trainer(c, spec[0], spec[1])
        out.append((spec[0], spec[1]))
    return out


def open_task(c: Consortium, opt: DemoOptions, members: int, log: Log) -> tuple[list[Path], Dataset]:
    """Everything an org admin does before the agents start: private data files (one per
    participant), tokens, the registered initial model and the task on the ledger."""
    folder = c.net.layout.root / "federated" / opt.task
    files, test = prepare_data(opt, members, folder / "data")
    ensure_tokens(c, opt.stake * members + opt.reward_per_round * opt.rounds, log)
    name = model_name(opt.task)
    first = c.orgs[0]
    with open_registry(c.profile(first), "trainer") as reg, tempfile.TemporaryDirectory() as tmp:
        model = initial_model(sklearn_dataset(opt.dataset), opt.seed)
        reg.register(
            save(model, Path(tmp) / "m"),
            name,
            "r0",
            [c.net.topology.org(first).msp_id],
            hyperparameters={"task": opt.task, "seed": opt.seed},
        )
    log(f"registered the initial model {name}@r0")
    task = {
        "id": opt.task,
        "initialModel": f"{name}@r0",
        "rounds": opt.rounds,
        "minParticipants": max(2, members // 2 + 1),
        "stake": opt.stake,
        "rewardPerRound": opt.reward_per_round,
        "commitSeconds": opt.phase_seconds,
        "revealSeconds": opt.reveal_seconds or opt.phase_seconds,
        "aggregateSeconds": opt.phase_seconds,
        "rule": opt.rule,
    }
    c.call(first, "admin", "Federation", "CreateTask", json.dumps(task))
    log(f"task {opt.task} created by {first}'s admin: {opt.rounds} rounds, rule {opt.rule}")
    return files, test


def cli_command(net: Network, *args: str) -> list[str]:
    """The `fabricml` CLI on this network, run by this Python."""
    network = ["--topology", str(net.topology.source), "--state-dir", str(net.layout.root)]
    return [sys.executable, "-m", "fabricml.cli", *args, *network]


def agent_command(
    net: Network, org: str, identity: str, task: str, data: Path, opt: DemoOptions, extra: list[str]
) -> list[str]:
    options = {"--org": org, "--identity": identity, "--task": task, "--data": str(data),
               "--epochs": str(opt.epochs), "--lr": str(opt.lr), "--seed": str(opt.seed)}  # fmt: skip
    return cli_command(net, "agent", "run", *(x for kv in options.items() for x in kv), *extra)


def run_demo(
    net: Network, opt: DemoOptions, log: Log, progress: Callable[[int, int, str], None]
) -> dict[str, Any]:
    folder = net.layout.root / "federated" / opt.task
    folder.mkdir(parents=True, exist_ok=True)
    with consortium(net) as c:
        members = trainer_identities(c, opt)
        log(
            f"{len(members)} participants: {', '.join(f'{o}/{i}' for o, i in members)}; "
            f"{opt.dataset}, split {opt.split}"
        )
        files, test = open_task(c, opt, len(members), log)
        first = c.orgs[0]

        procs: list[subprocess.Popen[bytes]] = []
        try:
            for (org, identity), data in zip(members, files, strict=True):
                logfile = (folder / f"agent-{org}-{identity}.log").open("wb")
                procs.append(
                    subprocess.Popen(
                        agent_command(net, org, identity, opt.task, data, opt, opt.agent_args),
                        stdout=logfile,
                        stderr=subprocess.STDOUT,
                    )
                )
            state = wait_for(c, first, opt.task, lambda t: len(t["participants"]) == len(members), procs, 300)
            c.call(first, "admin", "Federation", "Start", opt.task)
            log(f"all {len(state['participants'])} participants joined and staked; round 1 started")
            done, end = 0, time.monotonic() + 3600
            while True:
                state = wait_for(c, first, opt.task, lambda t: True, procs, end - time.monotonic())
                finished = state["round"] if state["status"] == "done" else state["round"] - 1
                while done < finished:
                    done += 1
                    r = c.call(first, "auditor", "Federation", "GetRound", opt.task, str(done), submit=False)
                    progress(done, opt.rounds, f"round {done}: {r['status']}")
                if state["status"] == "done":
                    break
                progress(done, opt.rounds, f"round {state['round']}: {state['phase']}")
                time.sleep(0.3)
            for p in procs:
                if p.wait(timeout=300) != 0:
                    raise RuntimeError(f"an agent exited with {p.returncode}; see {folder}/agent-*.log")
        finally:
            for p in procs:
                if p.poll() is None:
                    p.terminate()
                    p.wait(timeout=30)

        rounds = [
            c.call(first, "auditor", "Federation", "GetRound", opt.task, str(r), submit=False)
            for r in range(1, state["round"] + 1)
        ]
        finals = [r["round"] for r in rounds if r["status"] == "FINALIZED"]
        if not finals:
            raise RuntimeError(f"no round of {opt.task} was finalized: {[r['reason'] for r in rounds]}")
        final = round_ref(opt.task, finals[-1])
        curve = global_curve(c, first, opt.task, finals, test)
        voters = c.orgs[: len(c.orgs) // 2 + 1]
        for org in voters:
            c.call(org, "admin", "Registry", "Approve", final)
        deployable = c.call(first, "auditor", "Registry", "Deployable", final, submit=False)
        log(f"{final} approved by {', '.join(voters)}: deployable={deployable['deployable']}")
        plot = plot_training(folder, curve)
        summary: dict[str, Any] = {
            "task": opt.task,
            "model": final,
            "rounds": rounds,
            "globalCurve": curve,
            "plot": str(plot),
            "agentLogs": str(folder),
            "approvedBy": voters,
            "deployable": deployable["deployable"],
        }
        if opt.serve:
            summary["inference"] = serve_and_attest(net, final, test, log)
        return summary


def wait_for(
    c: Consortium,
    org: str,
    task: str,
    ready: Callable[[dict[str, Any]], bool],
    procs: list[subprocess.Popen[bytes]],
    timeout: float,
) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while True:
        state: dict[str, Any] = c.call(org, "auditor", "Federation", "GetTask", task, submit=False)
        if ready(state):
            return state
        dead = [p for p in procs if p.poll() not in (None, 0)]
        if dead:
            raise RuntimeError(f"{len(dead)} agent(s) failed (exit {dead[0].returncode}); see their logs")
        if time.monotonic() > end:
            raise TimeoutError(
                f"task {task} still at round {state['round']} {state['phase']} after {timeout}s"
            )
        time.sleep(0.3)


def global_curve(
    c: Consortium, org: str, task: str, rounds: list[int], test: Dataset
) -> list[dict[str, Any]]:
    """Test-set loss and accuracy of each round's registered global model, fetched through
    the registry (so every file is checked against the ledger)."""
    out = []
    with open_registry(c.profile(org), "auditor") as reg, tempfile.TemporaryDirectory() as tmp:
        for r in [0, *rounds]:
            ref = f"{model_name(task)}@r{r}"
            model = load(reg.load(ref, Path(tmp) / f"r{r}", require_deployable=False))
            loss, acc = evaluate(model, test)
            out.append({"round": r, "model": ref, "testLoss": loss, "testAccuracy": acc})
    return out


def plot_training(folder: Path, curve: list[dict[str, Any]]) -> Path:
    """Accuracy and loss per round: the global model on the test set, and each
    participant's view of it on its own held-out data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
    rounds = [p["round"] for p in curve]
    ax_acc.plot(rounds, [p["testAccuracy"] for p in curve], "k-o", lw=2, label="global (test set)")
    ax_loss.plot(rounds, [p["testLoss"] for p in curve], "k-o", lw=2, label="global (test set)")
    for metrics in sorted(folder.glob("agents/*/metrics.jsonl")):
        lines = [json.loads(x) for x in metrics.read_text().splitlines()]
        who = lines[0]["participant"] if lines else metrics.parent.name
        xs = [m["round"] for m in lines]
        ax_acc.plot(xs, [m["heldoutAccuracy"] for m in lines], "--", alpha=0.7, label=who)
        ax_loss.plot(xs, [m["heldoutLoss"] for m in lines], "--", alpha=0.7, label=who)
    ax_acc.set(xlabel="round", ylabel="accuracy", title="Accuracy per round")
    ax_loss.set(xlabel="round", ylabel="cross-entropy loss", title="Loss per round")
    for ax in (ax_acc, ax_loss):
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    out = folder / "training.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def serve_and_attest(net: Network, ref: str, test: Dataset, log: Log) -> list[dict[str, Any]]:
    """Each org's inference service loads the approved model (digest-checked), answers test
    rows with signed receipts, anchors them; one receipt per org is verified end to end."""
    from cryptography import x509

    from fabricml.attest.verify import verify_receipt

    results = []
    procs = []
    try:
        for o in net.topology.organizations:
            port = o.port(INFERENCE_PORT_OFFSET)
            cmd = cli_command(net, "serve", "--org", o.name, "--model", ref, "--port", str(port))
            logfile = (net.layout.root / "federated" / f"serve-{o.name}.log").open("wb")
            procs.append((o, port, subprocess.Popen(cmd, stdout=logfile, stderr=subprocess.STDOUT)))
        for o, port, p in procs:
            url = f"http://127.0.0.1:{port}"
            _wait_healthy(url, p)
            rows = test.features[:16].tolist()
            answer = _http("POST", f"{url}/v1/predict", {"inputs": rows})
            predicted = [int(max(range(len(x)), key=x.__getitem__)) for x in answer["outputs"]]
            accuracy = (
                sum(int(a == b) for a, b in zip(predicted, test.labels[:16].tolist(), strict=True)) / 16
            )
            bundle = _proof(url, answer["receipt"]["sequence"])
            profile = ConnectionProfile.load(net.layout.profile(o))
            peer = profile.raw["peers"][profile.raw["organizations"][o.name]["peers"][0]]
            ca = x509.load_pem_x509_certificate(Path(peer["tlsCACerts"]["path"]).read_bytes())
            with profile.peer().sync_channel() as channel:
                ident, signer, hash_ = profile.identity("auditor")
                contract = sync.connect(channel, ident, signer, hash_).get_network(profile.channel_name)
                checks = verify_receipt(
                    bundle, ca, contract.get_contract(profile.chaincode_name, "Attestation")
                )
            ok = all(ch.ok for ch in checks)
            receipt_file = net.layout.root / "federated" / f"receipt-{o.name}.json"
            receipt_file.write_text(json.dumps(bundle, indent=1, sort_keys=True))
            results.append(
                {
                    "org": o.name,
                    "url": url,
                    "answers": len(rows),
                    "accuracy": accuracy,
                    "receiptVerified": ok,
                    "receipt": str(receipt_file),
                }
            )
            log(
                f"{o.name}'s inference service answered {len(rows)} rows (accuracy {accuracy:.2f}); "
                f"receipt {answer['receipt']['sequence']} anchored and verified: {ok}"
            )
    finally:
        for _, _, p in procs:
            p.terminate()
            p.wait(timeout=30)
    return results


def _http(method: str, url: str, body: Any | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"the inference service at {url} exited with {proc.returncode}")
        try:
            if _http("GET", f"{url}/healthz")["status"] == "serving":
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"the inference service at {url} did not become healthy in {timeout}s")


def _proof(url: str, sequence: int, timeout: float = 60) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with urllib.request.urlopen(f"{url}/v1/receipts/{sequence}/proof", timeout=30) as resp:
            if resp.status == 200:
                found: dict[str, Any] = json.loads(resp.read())
                return found
        time.sleep(0.3)
    raise TimeoutError(f"receipt {sequence} at {url} was not anchored within {timeout}s")
