"""Stored sequences: the org's rows, and which sequence a new lead runs."""

from __future__ import annotations

from sqlmodel import Session, col, select

from models.rules.sequences import CART_RECOVERY, CART_SOURCE, DEFAULTS
from models.tables import Sequence
from models.values import Intent


def sequence_for(
    session: Session, *, org_id: str, intent: Intent | None, source: str | None = None
) -> str | None:
    """The sequence for a lead: ``cart_recovery`` for carts; else, for its intent, the org's
    most recently updated sequence that applies, else a default that applies and was not
    replaced."""
    if source == CART_SOURCE:
        return CART_RECOVERY
    if intent is None:
        return None
    rows = [row for row in _rows(session, org_id=org_id) if row.name != CART_RECOVERY]
    for row in sorted(rows, key=lambda r: r.updated_at, reverse=True):
        if intent.value in row.definition.get("applies_to", []):
            return row.name
    replaced = {row.name for row in rows}
    for name, definition in DEFAULTS.items():
        if name == CART_RECOVERY:
            continue
        if name not in replaced and intent in definition.applies_to:
            return name
    return None


def _rows(session: Session, *, org_id: str) -> list[Sequence]:
    return list(
        session.exec(select(Sequence).where(Sequence.org_id == org_id).order_by(col(Sequence.name)))
    )
