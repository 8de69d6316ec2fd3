"""The org's sequences as the API lists them (its own, then the defaults it has not replaced)."""

from __future__ import annotations

from sqlmodel import Session

from models.rules.sequences import DEFAULTS
from models.schemas import SequencePublic
from models.store.sequences import _rows


def list_sequences(session: Session, *, org_id: str) -> list[SequencePublic]:
    """The org's sequences, and the defaults it has not replaced, by name."""
    stored = {row.name: row for row in _rows(session, org_id=org_id)}
    items = [
        SequencePublic(name=row.name, default=False, **row.definition) for row in stored.values()
    ]
    items += [
        SequencePublic(name=name, default=True, **definition.model_dump())
        for name, definition in DEFAULTS.items()
        if name not in stored
    ]
    return sorted(items, key=lambda item: item.name)
