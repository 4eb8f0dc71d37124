"""`until_done`: an admin command is made until Fabric shows its effect, not until it exits 0
(a BFT orderer accepts a config update, then drops it when another update was ordered first)."""

from __future__ import annotations

import pytest

from fabricml.network.peercli import FabricCommandError, until_done


class Ledger:
    """What the ordering service keeps of the commands sent to it: the first `dropped` are lost."""

    def __init__(self, dropped: int = 0, refused: int = 0) -> None:
        self.dropped, self.refused = dropped, refused
        self.attempts = 0
        self.kept = False

    def done(self) -> bool:
        return self.kept

    def attempt(self) -> str:
        self.attempts += 1
        if self.attempts <= self.refused:
            raise FabricCommandError("peer channel update failed (exit 1)")
        if self.attempts > self.refused + self.dropped:
            self.kept = True
        return "Successfully submitted channel update"


def test_a_command_that_succeeded_but_was_dropped_is_made_again() -> None:
    ledger = Ledger(dropped=1)
    until_done(ledger.done, ledger.attempt, "org2's revocation list", timeout=5, delay=0.01, settle=0.05)
    assert ledger.kept and ledger.attempts == 2


def test_a_refused_command_is_made_again_and_one_that_took_effect_is_not() -> None:
    ledger = Ledger(refused=2)
    until_done(ledger.done, ledger.attempt, "org2's anchor peer", timeout=5, delay=0.01, settle=1)
    assert ledger.kept and ledger.attempts == 3


def test_nothing_is_sent_when_the_ledger_already_has_it() -> None:
    ledger = Ledger()
    ledger.kept = True
    until_done(ledger.done, ledger.attempt, "org1's anchor peer", timeout=5, delay=0.01)
    assert ledger.attempts == 0


def test_an_effect_that_never_shows_ends_in_an_error_naming_the_step() -> None:
    ledger = Ledger(dropped=10**6)
    with pytest.raises(FabricCommandError, match="org2's revocation list did not take effect") as info:
        until_done(ledger.done, ledger.attempt, "org2's revocation list", 0.3, delay=0.01, settle=0.05)
    assert "succeeded, yet" in str(info.value) and ledger.attempts >= 2 and not ledger.kept
