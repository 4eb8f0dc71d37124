"""`fabricml fed`: federated tasks' status, and the demo."""

from __future__ import annotations

import signal
import sys
from typing import Any

import click
from rich.progress import BarColumn, Progress, TextColumn
from rich.text import Text

from fabricml.contracts import FederationClient, open_contract

from .app import App, identity_option, org_option, pass_app, shared_options, signer_options


@click.group("fed")
def fed_group() -> None:
    """Federated tasks: status, rounds, plots and the demo."""


@fed_group.command("status")
@signer_options("auditor")
@click.argument("task")
def status(app: App, task: str, org: str, identity: str) -> None:
    """A task's phase, participants and how each round ended."""
    with open_contract(app.profile(org), identity, FederationClient) as fed:
        state = fed.get_task(task)
        last = state.state.settled_round if state.state else 0  # every settled round, however it ended
        rounds = [fed.get_round(task, r) for r in range(1, last + 1)]
    if app.as_json:
        app.emit({"task": state.to_json(), "rounds": [r.to_json() for r in rounds]})
        return
    # Protocol v2: the phase is that of the next round to settle (COMMIT, AGGREGATE, SETTLE).
    phase = f" {state.phase} until {state.phase_deadline}" if state.status == "running" else ""
    app.say(
        f"task {task}: {state.status}, round {state.round}/{state.rounds}{phase}, "
        f"rule {state.rule}, at most {state.max_per_org} per org, escrow {state.escrow}"
    )
    for p in state.participants:
        out = f"  {p.out.upper()} in round {p.out_round}" if p.out else ""
        app.say(f"  {p.key}: stake {p.stake}{out}")
    for r in rounds:
        extra = r.reason or f"aggregate {r.aggregate_digest[:12]}, rewards {dict(r.rewards)}"
        lost = f", slashed {list(r.slashed)}" if r.slashed else ""
        gone = f", missing {list(r.missing)}" if r.missing else ""
        app.say(f"  round {r.round}: {r.status} — {extra}{lost}{gone}")


@fed_group.command("create")
@shared_options
@click.argument("task")
@click.option("--initial-model", required=True, help="Registered starting point, name@version.")
@click.option("--rounds", type=click.IntRange(1, 1000), default=4, show_default=True)
@click.option("--min-participants", type=click.IntRange(2), default=2, show_default=True)
@click.option("--max-per-org", type=click.IntRange(0), default=0, help="Participants one org may run (0: 1).")
@click.option("--stake", type=click.IntRange(1), default=100, show_default=True, help="Each participant's.")
@click.option("--reward-per-round", type=click.IntRange(1), default=30, show_default=True)
@click.option("--enroll-seconds", type=click.IntRange(0), default=0, help="Enrollment window (0: 7 days).")
@click.option("--commit-seconds", type=click.IntRange(1), default=300, show_default=True)
@click.option("--reveal-seconds", type=click.IntRange(1), default=300, show_default=True)
@click.option("--aggregate-seconds", type=click.IntRange(1), default=300, show_default=True)
@click.option("--rule", default="median", show_default=True, help="Aggregation rule.")
@org_option()
@identity_option("admin")
@pass_app
def create(app: App, task: str, org: str, identity: str, **terms: Any) -> None:
    """Open TASK (the org's admins): its terms on the ledger; the org escrows every round's
    reward. Participants join with `fabricml agent run --task TASK`; then `fed start`.
    Phases end as soon as every participant acted; the windows only bound a slow one."""
    from fabricml.contracts.federation import TaskRequest

    request = TaskRequest(id=task, **terms)
    escrow = request.rounds * request.reward_per_round
    with open_contract(app.profile(org), identity, FederationClient) as fed:
        state = fed.create_task(request)
    app.answer(
        state.to_json(),
        f"task {task} created: {state.rounds} rounds from {request.initial_model}, "
        f"at least {request.min_participants} participants, escrow {escrow}",
    )


@fed_group.command("start")
@signer_options("admin")
@click.argument("task")
def start(app: App, task: str, org: str, identity: str) -> None:
    """Begin round 1 of TASK once enough participants joined (an admin of its creator or of
    a participating org)."""
    with open_contract(app.profile(org), identity, FederationClient) as fed:
        state = fed.start(task)
    app.answer(state.to_json(), f"task {task}: round 1 started")


@fed_group.command("settle")
@signer_options("admin")
@click.argument("task")
@click.argument("round_", metavar="ROUND", type=click.IntRange(1, 1000))
def settle(app: App, task: str, round_: int, org: str, identity: str) -> None:
    """Settle ROUND of TASK once the ledger allows it (its agents normally do): rewards,
    slashes and refunds. Any member identity may."""
    with open_contract(app.profile(org), identity, FederationClient) as fed:
        result = fed.settle(task, round_)
    app.answer(result.to_json(), f"round {round_} of {task}: {result.status} {result.reason}".rstrip())


@fed_group.command("close")
@signer_options("admin")
@click.argument("task")
def close(app: App, task: str, org: str, identity: str) -> None:
    """End TASK when it cannot go on (too few participants left, or past its time): the
    remaining stakes and rewards are refunded."""
    with open_contract(app.profile(org), identity, FederationClient) as fed:
        state = fed.close(task)
    app.answer(state.to_json(), f"task {task} closed: {state.reason or 'done'}")


@fed_group.command("cancel")
@signer_options("admin")
@click.argument("task")
def cancel(app: App, task: str, org: str, identity: str) -> None:
    """Cancel TASK before it started (its creator's admins): every stake and the rewards
    are refunded."""
    with open_contract(app.profile(org), identity, FederationClient) as fed:
        state = fed.cancel(task)
    app.answer(state.to_json(), f"task {task}: {state.status}")


@fed_group.command("demo")
@shared_options
@click.option(
    "--dataset",
    type=click.Choice(["digits", "breast_cancer", "images32"]),
    default="digits",
    show_default=True,
)
@click.option("--split", type=click.Choice(["iid", "dirichlet"]), default="iid", show_default=True)
@click.option(
    "--alpha", default=0.5, show_default=True, help="Dirichlet concentration for --split dirichlet."
)
@click.option("--rounds", default=4, show_default=True)
@click.option("--rule", default="median", show_default=True)
@click.option("--participants-per-org", default=1, show_default=True)
@click.option(
    "--participant", "participants", multiple=True, help="org/identity; repeat (default: each org's trainer)."
)
@click.option("--epochs", default=5, show_default=True, help="Local epochs per round.")
@click.option("--lr", default=0.1, show_default=True, help="Local SGD learning rate (images32: 0.01).")
@click.option("--task", help="Task ID (default: a fresh demo-xxxxxx).")
@click.option("--fedprox-mu", type=float, help="Agents train with FedProx's proximal term.")
@click.option("--dp-clip", type=float, help="Agents add client-level DP: L2 bound of an update.")
@click.option("--dp-noise", type=float, default=1.0, show_default=True, help="DP noise multiplier.")
@click.option("--no-serve", is_flag=True, help="Skip serving the final model.")
@click.option(
    "--restart-agents",
    "agent_restarts",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Start a dead agent again (it resumes from its state), up to this many times in all.",
)
@pass_app
def demo(app: App, **given: Any) -> None:
    """Train a model across the orgs to FINALIZED, approve it, serve it with attested receipts.
    A dead agent stops the demo at once, named, with the end of its log (or, with
    --restart-agents, is started again)."""
    from fabricml.demo import run_demo

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the agents are stopped too
    opt = demo_options(given)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} rounds"),
    )
    with Progress(*columns, console=app.console, disable=app.as_json) as bar:
        tid = bar.add_task("federated training", total=opt.rounds)

        def progress(done: int, total: int, text: str) -> None:
            bar.update(tid, completed=done, total=total, description=text)

        summary = run_demo(app.network, opt, lambda m: bar.console.print(Text(m), soft_wrap=True), progress)
    if app.as_json:
        app.emit(summary)
    else:
        _print_summary(app, summary)


def demo_options(given: dict[str, Any]) -> Any:
    """`fabricml fed demo`'s options as DemoOptions; FedProx and DP go to every agent."""
    from fabricml.demo import DemoOptions

    given = dict(given)
    fedprox, dp_clip, dp_noise, task = (given.pop(k) for k in ("fedprox_mu", "dp_clip", "dp_noise", "task"))
    serve = not given.pop("no_serve")
    opt = DemoOptions(**{**given, "participants": list(given["participants"]), "serve": serve})
    if task:
        opt.task = task
    if fedprox:
        opt.agent_args += ["--fedprox-mu", str(fedprox)]
    if dp_clip:
        opt.agent_args += ["--dp-clip", str(dp_clip), "--dp-noise", str(dp_noise)]
    return opt


def _print_summary(app: App, s: dict[str, Any]) -> None:
    app.console.rule("federated demo: summary")
    for r in s["rounds"]:
        detail = r["reason"] or f"agreeing {', '.join(r['agreeing'])}; rewards {r['rewards']}"
        app.say(f"round {r['round']}: {r['status']} — {detail}")
    for p in s["globalCurve"]:
        app.say(f"  {p['model']}: test accuracy {p['testAccuracy']:.3f}, loss {p['testLoss']:.3f}")
    app.say(f"final model {s['model']}: approved by {', '.join(s['approvedBy'])}")
    for i in s.get("inference", []):
        app.say(f"  {i['org']}: {i['answers']} answers with receipts, verified: {i['receiptVerified']}")
    lines = [
        ("training curves", s["plot"]),
        ("agents' logs/state", s["agentLogs"]),
        ("rounds on the ledger", f"fabricml fed status {s['task']}"),
        ("lineage", f"fabricml model lineage {s['model']} --png lineage.png"),
        ("audit report", f"fabricml model audit-report {s['model']} --out report.html"),
    ]
    if s.get("inference"):
        lines.append(("a receipt", f"fabricml attest verify {s['inference'][0]['receipt']}"))
    app.say("\nwhere to look next:")
    for what, where in lines:
        app.say(f"  {what:20} {where}")
    sys.stdout.flush()
