"""A contact's consent log, as the API shows it."""

from __future__ import annotations

from sqlmodel import Session, col, select

from models.errors import NotFound
from models.tables import (
    ConsentRecord,
    Contact,
)


def consent_log(session: Session, *, org_id: str, contact_id: str) -> list[ConsentRecord]:
    """Every consent change of the contact, oldest first; ``NotFound`` if not this org's."""
    contact = session.get(Contact, contact_id)
    if contact is None or contact.org_id != org_id:
        raise NotFound(contact_id)
    return list(
        session.exec(
            select(ConsentRecord)
            .where(ConsentRecord.org_id == org_id, ConsentRecord.contact_id == contact_id)
            .order_by(col(ConsentRecord.recorded_at), col(ConsentRecord.id))
        )
    )
