"""The training agent of one participant: follows the Federation contract and does its
part of every round, with no coordinator to trust.

COMMIT: train from the agreed global model, commit the digest of the encoded update.
REVEAL: put the update in the org's artifact store (mutual TLS, members only) and reveal.
AGGREGATE: fetch every revealed update from its owner's store, check it against the
commitment, aggregate by the task's rule, score and flag, and (one agent per org) post.
When a round is FINALIZED the new global model is adopted only if it has the quorum's
digest; the first agreeing org registers it in the registry with its lineage.

Everything the agent did is in its state directory, written before the ledger is told,
so a restarted agent picks up where it stopped, in any phase."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fabricml.gateway import CommitError, EndorseError, GatewayError, sync
from fabricml.gateway.profile import ConnectionProfile
from fabricml.models.cnn import SmallCNN
from fabricml.models.mlp import MLP, build, load, save
from fabricml.registry.artifacts import ArtifactError, ArtifactStore
from fabricml.registry.connect import member_stores, own_store_url
from fabricml.registry.digests import sha256_bytes
from fabricml.registry.service import ModelRegistry

from . import fixedpoint
from .aggregation import apply_rule
from .data import Dataset
from .evidence import History, assess
from .fixedpoint import Update
from .participant import Participant
from .privacy import DifferentialPrivacy
from .training import LocalTraining, evaluate, global_parameters, load_parameters, next_global, parameters

Log = Callable[[str], None]
# A round's new global model, its digest, (assessment, history after it), datasets.
Computed = tuple[Update, str, Any, dict[str, Any]]
# Usable updates, their sample counts and dataset fingerprints, and why others are unusable.
Collected = tuple[dict[str, Update], dict[str, int], dict[str, dict[str, Any]], dict[str, str]]


class AgentError(RuntimeError):
    """The agent cannot go on (e.g. the quorum's model cannot be reproduced)."""


@dataclass
class AgentOptions:
    task: str
    data: Dataset
    state_dir: Path
    training: LocalTraining = field(default_factory=LocalTraining)
    privacy: DifferentialPrivacy | None = None
    device: str = "cpu"
    heldout: float = 0.2  # share of local data kept back to evaluate each global model
    join: bool = True
    attack: str = ""  # for tests: see participant.ATTACKS
    wrong_aggregate: bool = False  # for tests: post a digest no one else computes
    poll_seconds: float = 2.0
    progress: Callable[[int, int, int], None] | None = None  # (round, step, steps) of local training
    stop: threading.Event = field(default_factory=threading.Event)


def model_name(task: str) -> str:
    """Registry name of a task's global models (registry names are lower case)."""
    return re.sub(r"[^a-z0-9._-]", "-", f"fed-{task}".lower())[:64]


def round_ref(task: str, round_: int) -> str:
    return f"{model_name(task)}@r{round_}"


class State:
    """The agent's memory on disk: small JSON plus the update and global model bytes."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "state.json"
        self.data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        self.data.setdefault("roundsDone", 0)
        self.data.setdefault("history", {})
        self.data.setdefault("dpRounds", 0)

    def save(self) -> None:
        _write(self.dir / "state.json", json.dumps(self.data, indent=1, sort_keys=True).encode())

    def read(self, name: str) -> bytes | None:
        path = self.dir / name
        return path.read_bytes() if path.exists() else None

    def put(self, name: str, data: bytes) -> None:
        _write(self.dir / name, data)

    def metric(self, line: dict[str, Any]) -> None:
        with (self.dir / "metrics.jsonl").open("a") as f:
            f.write(json.dumps(line, sort_keys=True) + "\n")

    def metrics(self) -> list[dict[str, Any]]:
        path = self.dir / "metrics.jsonl"
        return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def _write(path: Path, data: bytes) -> None:
    """Atomically: a crash leaves the old file or the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def submit(contract: sync.Contract, function: str, *args: str) -> bytes:
    """Submit, retrying endorsements that differ only because a peer had not yet committed
    the previous block (peers endorse from their own ledger copy, a moment apart)."""
    for attempt in range(6):
        try:
            return contract.submit_transaction(function, *args)
        except EndorseError as exc:
            if "do not match" not in str(exc) or attempt == 5:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _benign(exc: Exception) -> bool:
    """An Advance another agent won, or one the ledger's state or time does not allow yet."""
    text = str(exc)
    return isinstance(exc, CommitError) or any(
        s in text
        for s in (
            "committed and the phase ends",
            "revealed and the phase ends",
            "aggregate phase ends",
            "this needs round",
            "is done",
        )
    )


class Agent:
    def __init__(self, profile: ConnectionProfile, identity: str, options: AgentOptions, log: Log = print):
        self.profile, self.identity_name, self.opt, self.log = profile, identity, options, log
        self.msp = profile.msp_id
        self.wake = threading.Event()
        self.channel = profile.peer().sync_channel()
        ident, signer, hash_ = profile.identity(identity)
        gateway = sync.connect(self.channel, ident, signer, hash_)
        self.network = gateway.get_network(profile.channel_name)
        self.fed = self.network.get_contract(profile.chaincode_name, "Federation")
        store = ArtifactStore(Path(profile.raw["artifactStore"]))
        self.registry = ModelRegistry(
            self.network.get_contract(profile.chaincode_name, "Registry"),
            store,
            member_stores(profile, identity),
            self.msp,
            own_store_url(profile),
        )
        who = json.loads(
            self.network.get_contract(profile.chaincode_name, "Consortium").evaluate_transaction("WhoAmI")
        )
        self.key = f"{self.msp}/{who['subject']}"
        self.state = State(options.state_dir / options.task / "agents" / self.key.replace("/", "_"))
        self.train_data, self.heldout = options.data.split(options.heldout, options.training.seed)
        self.participant: Participant | None = None
        self.global_fp: Update | None = None
        self.model_config: dict[str, Any] = {}
        self._computed: dict[int, Computed] = {}

    # ---- ledger calls -------------------------------------------------------------------

    def _task(self) -> dict[str, Any]:
        return dict(json.loads(self.fed.evaluate_transaction("GetTask", self.opt.task)))

    def _submit(self, function: str, *args: str) -> Any:
        return json.loads(submit(self.fed, function, *args))

    def _try(self, function: str, *args: str) -> Any:
        try:
            return self._submit(function, *args)
        except (GatewayError, CommitError) as exc:
            if _benign(exc):
                return None
            raise

    def _commitments(self, round_: int) -> list[dict[str, Any]]:
        return list(json.loads(self.fed.evaluate_transaction("Commitments", self.opt.task, str(round_))))

    # ---- the loop -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _following_events(self) -> Iterator[None]:
        events = self.network.chaincode_events(self.profile.chaincode_name)

        def follow() -> None:
            with contextlib.suppress(Exception):  # the stream ends when we close it
                for event in events:
                    if self.opt.task.encode() in event.payload:  # other tasks' events are not ours
                        self.wake.set()

        thread = threading.Thread(target=follow, name="fabricml-agent-events", daemon=True)
        thread.start()
        try:
            yield
        finally:
            events.close()

    def run(self) -> dict[str, Any]:
        """Take part until the task is done (or this participant is slashed); returns a summary."""
        try:
            with self._following_events():
                while not self.opt.stop.is_set():
                    self.wake.clear()
                    task = self._task()
                    try:
                        if self._step(task):
                            break
                    except CommitError as exc:  # e.g. an MVCC conflict with another agent: look again
                        self.log(f"{self.key}: {exc}; trying again")
                    self.wake.wait(self.opt.poll_seconds)
            self._register_pending()  # the last round's model
            return self.summary()
        finally:
            self.channel.close()

    def _step(self, task: dict[str, Any]) -> bool:
        """Act on the task as it stands; True when there is nothing left to do."""
        if task["status"] == "enrolling":
            if self.opt.join and not any(self._is_me(p) for p in task["participants"]):
                self._submit("Join", self.opt.task)
                self.log(f"{self.key} joined task {self.opt.task} (stake {task['stake']})")
            return False
        self._catch_up(task)
        me = next((p for p in task["participants"] if self._is_me(p)), None)
        if task["status"] == "done" or me is None or me["slashed"]:
            if me is not None and me["slashed"]:
                self.log(f"{self.key} was slashed and takes no further part")
            return True
        round_, phase = task["round"], task["phase"]
        deadline_passed = _past(task["phaseDeadline"])
        if phase == "COMMIT":
            self._commit(round_)
            if deadline_passed or self._all_committed(task, round_):
                self._try("Advance", self.opt.task)
        elif phase == "REVEAL":
            self._reveal(round_)
            if deadline_passed or all(c["revealed"] for c in self._commitments(round_)):
                self._try("Advance", self.opt.task)
        elif phase == "AGGREGATE":
            self._aggregate(task, round_)
            if deadline_passed or self._quorum_posted(task, round_):
                self._try("Advance", self.opt.task)
            # While the other orgs post: registering then delays no phase of ours.
            self._register_pending()
        return False

    def _is_me(self, p: dict[str, Any]) -> bool:
        return f"{p['mspId']}/{p['subject']}" == self.key

    def _quorum_posted(self, task: dict[str, Any], round_: int) -> bool:
        posts = json.loads(self.fed.evaluate_transaction("Aggregates", self.opt.task, str(round_)))
        orgs = {p["mspId"] for p in task["participants"] if not p["slashed"]}
        digests = [p["digest"] for p in posts]
        return any(digests.count(d) >= len(orgs) // 2 + 1 for d in digests)

    def _all_committed(self, task: dict[str, Any], round_: int) -> bool:
        active = sum(1 for p in task["participants"] if not p["slashed"])
        return len(self._commitments(round_)) >= active

    # ---- the global model ---------------------------------------------------------------

    def _ensure_global(self, task: dict[str, Any]) -> Update:
        if self.global_fp is not None:
            return self.global_fp
        saved = self.state.read("global.bin")
        if saved is not None:
            self.global_fp = fixedpoint.from_bytes(saved)
            self.model_config = json.loads(self.state.read("config.json") or b"{}")
        else:
            with tempfile.TemporaryDirectory() as tmp:
                model_dir = self.registry.load(task["initialModel"], Path(tmp), require_deployable=False)
                self.model_config = json.loads((model_dir / "config.json").read_text())
                model = load(model_dir)
            self.global_fp = fixedpoint.encode(parameters(model))
            self.state.put("config.json", json.dumps(self.model_config, sort_keys=True).encode())
            self.state.put("global.bin", fixedpoint.to_bytes(self.global_fp, {"round": 0}))
        return self.global_fp

    def _fresh_model(self) -> MLP | SmallCNN:
        """An untrained model of the task's architecture (from the initial model's config)."""
        return build(self.model_config or json.loads(self.state.read("config.json") or b"{}"))

    def _participant(self) -> Participant:
        if self.participant is None:
            self.participant = Participant(
                self.key,
                self.train_data,
                self.model_config,
                self.opt.training,
                self.opt.device,
                self.opt.privacy,
                self.opt.attack,
                self.state.data["dpRounds"],
            )
        return self.participant

    # ---- COMMIT and REVEAL --------------------------------------------------------------

    def _commit(self, round_: int) -> None:
        name = f"update-{round_}.bin"
        committed = self.state.data.setdefault("committed", {})
        if str(round_) in committed:
            return
        raw = self.state.read(name)
        if raw is None:
            global_fp = self._ensure_global(self._task())
            participant = self._participant()
            self.log(
                f"{self.key} round {round_}: training on {len(self.train_data)} rows ({self.opt.device})"
            )
            hook = self.opt.progress
            update, report = participant.update(
                global_fp, round_, (lambda done, total: hook(round_, done, total)) if hook else None
            )
            context = {
                "task": self.opt.task,
                "round": round_,
                # For tests: an update bound to someone else must be refused, not crash anyone.
                "participant": self.key if self.opt.attack != "misbound" else f"{self.key}-other",
                "dataset": self.opt.data.fingerprint().to_json(),
                "nonce": secrets.token_hex(8),
            }
            raw = fixedpoint.to_bytes(update, context)
            self.state.data.setdefault("training", {})[str(round_)] = {
                "samples": report.samples,
                "loss": report.loss,
                "seconds": report.seconds,
                "samplesPerSecond": report.samples_per_second,
                "device": report.device,
                "epsilon": participant.epsilon,
            }
            self.state.data["dpRounds"] = self.state.data["dpRounds"] + (1 if self.opt.privacy else 0)
            self.state.put(name, raw)  # before the ledger hears of it: a restart reveals these bytes
            self.state.save()
        digest = sha256_bytes(raw)
        samples = len(self.train_data)
        try:
            self._submit("Commit", self.opt.task, str(round_), digest, str(samples))
        except (GatewayError, CommitError) as exc:
            if "already committed" not in str(exc):
                raise
        committed[str(round_)] = digest
        self.state.save()
        self.log(f"{self.key} round {round_}: committed {digest[:12]}")

    def _reveal(self, round_: int) -> None:
        revealed = self.state.data.setdefault("revealed", [])
        if round_ in revealed or str(round_) not in self.state.data.get("committed", {}):
            return
        if self.opt.attack == "never_reveals":
            return
        raw = self.state.read(f"update-{round_}.bin")
        if raw is None:
            raise AgentError(f"the update committed for round {round_} is missing from {self.state.dir}")
        digest = self.registry.store.put_bytes(raw)
        url = self.profile.raw["artifactServers"][self.profile.organization]["url"]
        try:
            self._submit("Reveal", self.opt.task, str(round_), digest, f"{url}/v1/blobs/{digest}")
        except (GatewayError, CommitError) as exc:
            if "already revealed" not in str(exc):
                raise
        revealed.append(round_)
        self.state.save()
        self.log(f"{self.key} round {round_}: revealed")

    # ---- AGGREGATE ----------------------------------------------------------------------

    def _collect(self, task: dict[str, Any], round_: int) -> Collected:
        """Every revealed update of the round, each checked against its commitment; the
        ones that cannot be used are set apart with the reason (their authors are flagged)."""
        updates: dict[str, Update] = {}
        samples: dict[str, int] = {}
        datasets: dict[str, dict[str, Any]] = {}
        invalid: dict[str, str] = {}
        shapes = [a.shape for a in self._ensure_global(task)]
        for c in self._commitments(round_):
            if not c["revealed"]:
                continue
            key = f"{c['participant']['mspId']}/{c['participant']['subject']}"
            try:
                raw = self._fetch(c["digest"])
                context = fixedpoint.header(raw).get("context", {})
                expected = {"task": self.opt.task, "round": round_, "participant": key}
                if {k: context.get(k) for k in expected} != expected:
                    raise ValueError(f"its bytes are bound to {context}, not to {expected}")
                update = fixedpoint.from_bytes(raw)
                if [a.shape for a in update] != shapes:
                    raise ValueError(f"its shapes {[a.shape for a in update]} are not the model's {shapes}")
            except (AgentError, ValueError) as exc:
                invalid[key] = f"revealed an unusable update: {exc}"
                continue
            updates[key], samples[key] = update, int(c["samples"])
            datasets[key] = context.get("dataset", {})
        return updates, samples, datasets, invalid

    def _fetch(self, digest: str) -> bytes:
        errors: list[str] = []
        for _ in range(5):
            try:
                return self.registry.blob(digest)  # checked against the digest it is named by
            except (ArtifactError, OSError) as exc:
                errors.append(str(exc))
                time.sleep(0.5)
        raise AgentError(f"update {digest} could not be fetched: {errors[-1]}")

    def _compute(self, task: dict[str, Any], round_: int) -> Computed:
        """The round's new global model, its digest, the assessment and the datasets
        (computed once per round: the poster's result is adopted when the round ends)."""
        if round_ in self._computed:
            return self._computed[round_]
        updates, samples, datasets, invalid = self._collect(task, round_)
        if not updates:
            raise AgentError(f"round {round_}: no usable update was revealed ({invalid})")
        keys = sorted(updates)
        aggregate = apply_rule(task["rule"], [updates[k] for k in keys], [samples[k] for k in keys])
        new_global = next_global(self._ensure_global(task), aggregate)
        history = History.from_json(self.state.data["history"])
        found = assess(round_, updates, history, invalid)  # on a copy: kept once the round is final
        self._computed = {round_: (new_global, fixedpoint.digest(new_global), (found, history), datasets)}
        return self._computed[round_]

    def _poster(self, task: dict[str, Any]) -> bool:
        """One agent per org posts: the org's first active participant."""
        ours = sorted(
            p["subject"] for p in task["participants"] if p["mspId"] == self.msp and not p["slashed"]
        )
        return bool(ours) and self.key == f"{self.msp}/{ours[0]}"

    def _aggregate(self, task: dict[str, Any], round_: int) -> None:
        posted = self.state.data.setdefault("posted", [])
        if round_ in posted or not self._poster(task):
            return
        _, digest, (found, _), _ = self._compute(task, round_)
        if self.opt.wrong_aggregate:
            digest = sha256_bytes(digest.encode() + b"wrong")
        try:
            self._submit(
                "PostAggregate",
                self.opt.task,
                str(round_),
                digest,
                json.dumps(found.scores, sort_keys=True),
                json.dumps(found.flagged),
            )
        except GatewayError as exc:
            if "already posted" not in str(exc):
                raise
        posted.append(round_)
        self.state.save()
        flags = "; ".join(f"{k}: {v}" for k, v in sorted(found.reasons.items())) or "none"
        self.log(f"{self.key} round {round_}: posted aggregate {digest[:12]}; outliers: {flags}")

    # ---- after a round ------------------------------------------------------------------

    def _catch_up(self, task: dict[str, Any]) -> None:
        """Adopt the outcome of every round that ended since we last looked."""
        last = task["round"] - 1 if task["status"] == "running" else task["round"]
        while self.state.data["roundsDone"] < last:
            round_ = self.state.data["roundsDone"] + 1
            result = json.loads(self.fed.evaluate_transaction("GetRound", self.opt.task, str(round_)))
            self._adopt(task, round_, result)

    def _adopt(self, task: dict[str, Any], round_: int, result: dict[str, Any]) -> None:
        line: dict[str, Any] = {
            "round": round_,
            "status": result["status"],
            "participant": self.key,
            "org": self.msp,
            **self.state.data.get("training", {}).get(str(round_), {}),
        }
        datasets: dict[str, dict[str, Any]] = {}
        if result["status"] == "FINALIZED":
            new_global, digest, (found, history), datasets = self._compute(task, round_)
            if digest != result["aggregateDigest"]:
                raise AgentError(
                    f"round {round_}: the quorum agreed on {result['aggregateDigest']}, we compute {digest}"
                )
            self.global_fp = new_global
            self.state.put("global.bin", fixedpoint.to_bytes(new_global, {"round": round_}))
            self.state.data["history"] = history.to_json()
            line.update(
                aggregateDigest=digest,
                reward=result["rewards"].get(self.key, 0),
                slashed=result["slashed"],
                disagreeing=result["disagreeing"],
                outliers=found.reasons,
            )
        else:
            line["reason"] = result["reason"]
        model = self._fresh_model()
        load_parameters(model, global_parameters(self._ensure_global(task)))
        line["heldoutLoss"], line["heldoutAccuracy"] = evaluate(model, self.heldout)
        registrar = result["agreeing"] and result["agreeing"][0] == self.msp and self._poster(task)
        if result["status"] == "FINALIZED" and registrar:
            # Registered while the next round waits for other orgs' posts: off the critical path.
            self.state.put(
                f"global-{round_}.bin", fixedpoint.to_bytes(self._ensure_global(task), {"round": round_})
            )
            self.state.data.setdefault("toRegister", []).append({
                "round": round_, "rule": task["rule"], "datasets": datasets,
                "aggregateDigest": result["aggregateDigest"], "roundTx": result["txId"],
                "parent": self._parent(task, round_),
                "metrics": {"heldoutLoss": line["heldoutLoss"], "heldoutAccuracy": line["heldoutAccuracy"]},
            })  # fmt: skip
            line["registered"] = round_ref(self.opt.task, round_)
        self.state.metric(line)
        self.state.data["roundsDone"] = round_
        self.state.save()
        self.log(
            f"{self.key} round {round_}: {result['status']}"
            + (f" ({result['reason']})" if result["status"] != "FINALIZED" else "")
            + f"; held-out accuracy {line['heldoutAccuracy']:.3f}, loss {line['heldoutLoss']:.3f}"
            + (f"; reward {line.get('reward', 0)}" if result["status"] == "FINALIZED" else "")
            + (f"; privacy spent: epsilon {line['epsilon']:.2f}" if line.get("epsilon") else "")
            + (f"; {line['samplesPerSecond']:.0f} samples/s on {line['device']}" if "device" in line else "")
        )

    def _parent(self, task: dict[str, Any], round_: int) -> str:
        for done in reversed(self.state.metrics()):
            if done["round"] < round_ and done["status"] == "FINALIZED":
                return round_ref(self.opt.task, done["round"])
        return str(task["initialModel"])

    def _register_pending(self) -> None:
        """Register the global models of rounds this agent's org registers: lineage with
        task, round, participants, their dataset fingerprints, the rule and the digest."""
        from fabricml.registry.datasets import DatasetFingerprint

        pending = self.state.data.get("toRegister", [])
        while pending:
            entry = pending[0]
            round_ = entry["round"]
            ref = round_ref(self.opt.task, round_)
            try:
                self.registry.get(ref)  # registered before a restart
            except GatewayError:
                model = self._fresh_model()
                load_parameters(
                    model,
                    global_parameters(fixedpoint.from_bytes(self.state.read(f"global-{round_}.bin") or b"")),
                )
                datasets = entry["datasets"]
                fingerprints = [
                    DatasetFingerprint(k.replace("/", "-")[:64], d["digest"], d["rows"], d["schemaDigest"])
                    for k, d in sorted(datasets.items())
                    if d
                ]
                hyperparameters = {
                    "task": self.opt.task,
                    "round": round_,
                    "rule": entry["rule"],
                    "participants": sorted(datasets),
                    "aggregateDigest": entry["aggregateDigest"],
                    "roundTx": entry["roundTx"],
                    "localTraining": self.opt.training.to_json(),
                }
                with tempfile.TemporaryDirectory() as tmp:
                    save(model, Path(tmp) / "model")
                    try:
                        self.registry.register(
                            Path(tmp) / "model",
                            model_name(self.opt.task),
                            f"r{round_}",
                            sorted({k.split("/")[0] for k in datasets}),
                            fingerprints,
                            hyperparameters=hyperparameters,
                            metrics=entry["metrics"],
                            parents=[entry["parent"]],
                            round_ref=f"{self.opt.task}/{round_}",
                        )
                    except EndorseError as exc:
                        if "parent" not in str(exc):
                            raise
                        return  # the previous round's registrar has not registered yet: later
                self.log(f"{self.key} round {round_}: registered {ref}")
            pending.pop(0)
            self.state.save()

    def summary(self) -> dict[str, Any]:
        metrics = self.state.metrics()
        return {
            "participant": self.key,
            "task": self.opt.task,
            "rounds": metrics,
            "rewards": sum(int(m.get("reward", 0)) for m in metrics),
            "epsilon": self.participant.epsilon if self.participant else 0.0,
            "stateDir": str(self.state.dir),
        }


def _past(deadline: str) -> bool:
    """Whether the ledger will consider a phase over; our clock only decides when to ask."""
    if not deadline:
        return False
    when = datetime.datetime.fromisoformat(deadline.replace("Z", "+00:00"))
    return datetime.datetime.now(datetime.UTC) > when
