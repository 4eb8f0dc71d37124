"""`fabricml token`: an org's balance, and its admin's vote to mint."""

from __future__ import annotations

import click

from fabricml.contracts import TokenClient, open_contract

from .app import App, signer_options


@click.group("token")
def token_group() -> None:
    """Tokens: balances, and minting by a majority of member admins' votes."""


@token_group.command("balance")
@signer_options("auditor")
@click.argument("msp_id")
def balance(app: App, msp_id: str, org: str, identity: str) -> None:
    """MSP_ID's balance (0 for an org that never held tokens)."""
    with open_contract(app.profile(org), identity, TokenClient) as tokens:
        found = tokens.get_balance(msp_id)
    app.answer(found.to_json(), f"{msp_id}: {found.amount}")


@token_group.command("vote-mint")
@signer_options("admin")
@click.argument("vote")
@click.argument("recipient")
@click.argument("amount", type=click.IntRange(1))
def vote_mint(app: App, vote: str, recipient: str, amount: int, org: str, identity: str) -> None:
    """This org's vote VOTE to mint AMOUNT for RECIPIENT (an MSP ID); minted once a majority
    of member orgs voted the same terms under the same VOTE id."""
    with open_contract(app.profile(org), identity, TokenClient) as tokens:
        proposal = tokens.vote_mint(vote, recipient, amount)
    state = "minted" if proposal.minted else "open"
    app.answer(proposal.to_json(), f"vote {vote}: {state}; voters {', '.join(proposal.voters)}")
