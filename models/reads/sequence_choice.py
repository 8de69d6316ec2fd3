"""Which sequence a new lead runs, as the Settings pages show it: one per intent, and the
cart sequence for cart leads."""

from __future__ import annotations

from sqlmodel import Session

from models.rules.sequences import CART_SOURCE
from models.store.sequences import sequence_for
from models.values import Intent

#: The key of cart leads in ``sequence_by_intent`` (they run the cart sequence, whatever
#: their intent).
CART = "cart"


def sequence_by_intent(session: Session, *, org_id: str) -> dict[str, str | None]:
    """For each intent (and ``CART``), the sequence a lead created now would run; ``None``:
    no follow-up after the first touch."""
    chosen: dict[str, str | None] = {
        intent.value: sequence_for(session, org_id=org_id, intent=intent) for intent in Intent
    }
    chosen[CART] = sequence_for(session, org_id=org_id, intent=Intent.BROWSING, source=CART_SOURCE)
    return chosen
