"""Operators as use cases: add one to an org (with an invite to sign in), and record a
heartbeat (presence)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, func, select

from models.database import lock
from models.errors import NotFound, OperatorExists
from models.rules.operators import Role
from models.store.operators import get_operator
from models.store.sessions import add_invite
from models.tables import Operator, Org, Thread, utcnow
from models.values import new_id


@dataclass(frozen=True)
class Invited:
    """A new operator and the token of their one-time invite (``None`` without an email:
    they get escalations but can't sign in)."""

    operator: Operator
    invite_token: str | None


def create_operator(
    session: Session,
    *,
    org_id: str,
    name: str,
    role: Role,
    phone: str | None = None,
    email: str | None = None,
) -> Invited:
    """Add an operator (``phone`` already E.164) with an invite when they have an email.
    Offline until their first heartbeat. ``OperatorExists`` if another of the org's
    operators has the email."""
    email = email.strip().lower() if email else None
    if email is not None:
        # Two invites of one email at once: the org row serializes them (org is first in the
        # lock order), so the second sees the first.
        lock(session, Org, org_id)
        taken = session.exec(
            select(Operator.id)
            .where(Operator.org_id == org_id)
            .where(func.lower(col(Operator.email)) == email)
            .where(col(Operator.removed_at).is_(None))
        ).first()
        if taken is not None:
            raise OperatorExists(f"An operator of this org already has the email {email}.")
    operator = Operator(
        id=new_id("op"), org_id=org_id, name=name, role=role, phone=phone, email=email
    )
    session.add(operator)
    session.flush()
    token = (
        add_invite(session, org_id=org_id, operator_id=operator.id, now=utcnow()) if email else None
    )
    return Invited(operator=operator, invite_token=token)


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


def viewing(
    session: Session, *, org_id: str, operator_id: str, thread_id: str, now: datetime
) -> None:
    """The operator's inbox shows ``thread_id`` (a heartbeat too): others viewing it see them.
    ``NotFound`` for a thread not of this org."""
    thread = session.get(Thread, thread_id)
    if thread is None or thread.org_id != org_id:
        raise NotFound(thread_id)
    operator = heartbeat(session, org_id=org_id, operator_id=operator_id, now=now)
    if operator.viewing_thread_id != thread_id:
        operator.viewing_thread_id = thread_id
        session.add(operator)
        session.flush()
