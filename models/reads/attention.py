"""The needs-attention queue as the API lists it: unresolved items, oldest SLA first."""

from __future__ import annotations

from sqlmodel import Session, col, select

from models.rules.escalations import OPEN_STATUSES
from models.tables import Escalation


def open_items(session: Session, *, org_id: str, limit: int) -> list[Escalation]:
    """The org's unresolved items, the one whose SLA runs out first at the top."""
    return list(
        session.exec(
            select(Escalation)
            .where(Escalation.org_id == org_id, col(Escalation.status).in_(OPEN_STATUSES))
            .order_by(col(Escalation.sla_due_at), col(Escalation.opened_at))
            .limit(limit)
        )
    )
