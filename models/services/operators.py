"""Operators as use cases: add one to an org, and record a heartbeat (presence)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from models.rules.operators import Role
from models.store.operators import get_operator
from models.tables import Operator, utcnow
from models.values import new_id


def create_operator(
    session: Session,
    *,
    org_id: str,
    name: str,
    role: Role,
    phone: str | None = None,
    email: str | None = None,
) -> Operator:
    """Add an operator (``phone`` already E.164). Offline until their first heartbeat."""
    operator = Operator(
        id=new_id("op"), org_id=org_id, name=name, role=role, phone=phone, email=email
    )
    session.add(operator)
    session.flush()
    return operator


def heartbeat(
    session: Session, *, org_id: str, operator_id: str, now: datetime | None = None
) -> Operator:
    """The operator's inbox is open: they are online for ``ONLINE_FOR`` from ``now``."""
    operator = get_operator(session, org_id=org_id, operator_id=operator_id)
    now = now or utcnow()
    # A late, reordered heartbeat never moves presence back.
    if operator.last_seen_at is None or operator.last_seen_at < now:
        operator.last_seen_at = now
        session.add(operator)
        session.flush()
    return operator
