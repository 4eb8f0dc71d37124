"""Token balances and stakes; mint votes by org admins."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import AdminDep, ContextDep, ReaderDep
from ..schemas import Balance, MintProposal, MintVote
from ..services import tokens
from .common import LEDGER_ERRORS

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"], responses=LEDGER_ERRORS)


@router.get("/balances")
async def balances(_: ReaderDep, context: ContextDep) -> list[Balance]:
    """Every member's balance and what its open federated tasks hold as stake."""
    return await tokens.balances(context)


@router.post("/mint-votes")
async def vote_mint(body: MintVote, _: AdminDep, context: ContextDep) -> MintProposal:
    """This org's vote to mint tokens; minted once a majority voted for the same terms."""
    return await tokens.vote_mint(context, body)
