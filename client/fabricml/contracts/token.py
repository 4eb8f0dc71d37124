"""The Token contract: balances, and mints decided by a majority of member admins."""

from __future__ import annotations

from .call import ContractClient, evaluate, submit
from .records import Record


class Balance(Record):
    msp_id: str
    amount: int


class Supply(Record):
    amount: int  # every token ever minted: balances + stakes + escrows add up to it


class MintProposal(Record):
    id: str
    recipient: str  # MSP ID
    amount: int
    voters: tuple[str, ...] = ()
    minted: bool
    minted_tx: str = ""


class TokenClient(ContractClient):
    """Typed calls of the Token contract."""

    CONTRACT = "Token"

    def get_balance(self, msp_id: str) -> Balance:
        """An org's balance (0 for an org that never held tokens)."""
        return self._run(evaluate(Balance.from_bytes, "GetBalance", msp_id))

    def get_supply(self) -> Supply:
        """How many tokens were ever minted (at most 2^50)."""
        return self._run(evaluate(Supply.from_bytes, "GetSupply"))

    def vote_mint(self, proposal_id: str, recipient: str, amount: int) -> MintProposal:
        """This org's vote to mint `amount` for `recipient` (org admins); minted once a
        majority voted for the same terms. Refusals: INVALID, FORBIDDEN, CONFLICT (other
        terms under this id, or already minted), ALREADY_DONE (this org voted)."""
        return self._run(submit(MintProposal.from_bytes, "VoteMint", proposal_id, recipient, str(amount)))
