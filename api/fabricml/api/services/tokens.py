"""Token balances of the members, and what their federated tasks hold as stake."""

from __future__ import annotations

from fabricml.contracts import TokenClient

from ..context import ApiContext
from ..schemas import Balance, MintProposal, MintVote
from . import federation


async def balances(context: ApiContext) -> list[Balance]:
    staked = {o.msp_id: 0 for o in context.topology.organizations}
    for task_id in federation.task_ids(context):
        task = await federation.get(context, task_id)
        if task.status == "done":
            continue
        for p in task.participants or []:
            if not p.slashed:
                staked[p.mspId] = staked.get(p.mspId, 0) + task.stake
    out = []
    for msp in sorted(staked):
        out.append(Balance(mspId=msp, amount=await _balance(context, msp), staked=staked[msp]))
    return out


async def _balance(context: ApiContext, msp: str) -> int:
    found = await context.ledger.call(
        context.settings.auditor_identity, TokenClient, lambda t: t.get_balance(msp)
    )
    return found.amount


async def vote_mint(context: ApiContext, vote: MintVote) -> MintProposal:
    p = await context.ledger.call(
        context.settings.admin_identity,
        TokenClient,
        lambda t: t.vote_mint(vote.id, vote.recipient, vote.amount),
    )
    return MintProposal.model_validate(p.to_json())
