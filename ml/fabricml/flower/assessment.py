"""One org's assessment of a round from the updates it gathered: the same post an agent
computes (fabricml.federation.round_post), so every honest org that gathered the same
bytes posts exactly the same, whichever runtime drives its round."""

from __future__ import annotations

from fabricml.federation.evidence import History
from fabricml.federation.fixedpoint import Update
from fabricml.federation.reveals import PublishedUpdates
from fabricml.federation.round_post import RoundPost, round_post

from .collect import RoundUpdates


def assess_round(
    round_: int,
    rule: str,
    min_participants: int,
    global_model: Update,
    previous_global: Update | None,
    found: RoundUpdates,
    history: History,
) -> RoundPost:
    """The post for a round whose updates were gathered; `history` is not changed."""
    published = PublishedUpdates(
        dict(found.updates), dict(found.samples), dict(found.datasets), dict(found.invalid)
    )
    return round_post(
        round_, rule, global_model, published, found.missing, history, min_participants, previous_global
    )
