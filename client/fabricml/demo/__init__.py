"""The federated demo: a consortium trains one model across its orgs on the real network,
approves the result, serves it with attested receipts, and tells the user where to look.

Each participant is a separate `fabricml agent run` process with its own private data
file (fabricml.demo.agents supervises them); this package only plays the org admins
(tokens, initial model, task, start, approvals) and watches the ledger."""

from .agents import AgentDied, DemoError
from .run import run_demo
from .task import DemoOptions

__all__ = ["AgentDied", "DemoError", "DemoOptions", "run_demo"]
