"""The test coalition of colluding agents: members wait for each other, then all commit
forgeries computed only from what the coalition knows (its own honest updates)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from fabricml.federation import fixedpoint
from fabricml.federation.collusion import CoalitionLink
from fabricml.federation.exact import flatten
from fabricml.federation.fixedpoint import Update

MEMBERS = ("Org1MSP/a", "Org2MSP/b")


def _update(value: float) -> Update:
    return fixedpoint.encode([np.full((2, 3), value, dtype=np.float32), np.full(3, -value, dtype=np.float32)])


def _forge_together(link: CoalitionLink, honest: dict[str, Update]) -> dict[str, Update]:
    out: dict[str, Update] = {}

    def member(key: str) -> None:
        out[key] = link.forge(key, 1, honest[key])

    threads = [threading.Thread(target=member, args=(k,)) for k in honest]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return out


def test_ipm_members_send_the_negated_mean_of_their_own_updates() -> None:
    link = CoalitionLink("ipm:0.5", MEMBERS, participants=8)
    forged = _forge_together(link, {MEMBERS[0]: _update(0.2), MEMBERS[1]: _update(0.4)})
    assert sorted(forged) == sorted(MEMBERS)
    for u in forged.values():
        values = fixedpoint.decode([flatten(u)])[0]
        signs = np.sign(fixedpoint.decode([flatten(_update(0.3))])[0])
        assert np.all(np.sign(values) == -signs)  # against the coalition's own mean direction
        assert [a.shape for a in u] == [(2, 3), (3,)]


def test_alie_members_send_different_forgeries_near_their_mean() -> None:
    link = CoalitionLink("alie", MEMBERS, participants=8)
    forged = _forge_together(link, {MEMBERS[0]: _update(0.2), MEMBERS[1]: _update(0.4)})
    a, b = (fixedpoint.decode([flatten(forged[k])])[0] for k in MEMBERS)
    assert not np.array_equal(a, b)  # jittered apart: not flagged as copies
    assert np.all(np.abs(a) < 1.0) and np.all(np.abs(b) < 1.0)


def test_a_member_that_never_trains_times_the_others_out() -> None:
    link = CoalitionLink("alie", MEMBERS, participants=8, timeout=0.2)
    with pytest.raises(TimeoutError, match="never trained"):
        link.forge(MEMBERS[0], 1, _update(0.1))
