"""Token balances of the members, and what their federated tasks hold as stake."""

from __future__ import annotations

from ..context import ApiContext
from ..schemas import Balance, MintProposal, MintVote
from . import federation


async def balances(context: ApiContext) -> list[Balance]:
    staked = {o.msp_id: 0 for o in context.topology.organizations}
    for task_id in await federation.task_ids(context):
        task = await federation.get(context, task_id)
        if task.status == "done":
            continue
        for p in task.participants or []:
            if not p.slashed:
                staked[p.mspId] = staked.get(p.mspId, 0) + task.stake
    out = []
    for msp in sorted(staked):
        b = await context.ledger.evaluate(context.settings.auditor_identity, "Token", "GetBalance", msp)
        out.append(Balance(mspId=msp, amount=int(b["amount"]), staked=staked[msp]))
    return out


async def vote_mint(context: ApiContext, vote: MintVote) -> MintProposal:
    p = await context.ledger.submit(
        context.settings.admin_identity, "Token", "VoteMint", vote.id, vote.recipient, str(vote.amount)
    )
    return MintProposal.model_validate(p)
