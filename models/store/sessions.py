"""Operators' invites and sessions: only the SHA-256 of each token is stored."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlmodel import Session, col, select, update

from models.rules.sign_in import INVITE_FOR, SESSION_FOR, token_hash
from models.tables import OperatorInvite, OperatorSession


def new_token() -> str:
    """A random URL-safe token (256 bits)."""
    return secrets.token_urlsafe(32)


def cancel_invites(session: Session, *, operator_id: str, now: datetime) -> None:
    """Every unused invite of the operator stops working."""
    session.execute(
        update(OperatorInvite)
        .where(col(OperatorInvite.operator_id) == operator_id)
        .where(col(OperatorInvite.used_at).is_(None))
        .values(used_at=now)
    )


def add_invite(session: Session, *, org_id: str, operator_id: str, now: datetime) -> str:
    """A new one-time invite for the operator (earlier unused ones stop working); its token."""
    cancel_invites(session, operator_id=operator_id, now=now)
    token = new_token()
    session.add(
        OperatorInvite(
            token_hash=token_hash(token),
            org_id=org_id,
            operator_id=operator_id,
            created_at=now,
            expires_at=now + INVITE_FOR,
        )
    )
    session.flush()
    return token


def get_invite(session: Session, *, token: str) -> OperatorInvite | None:
    """The invite a token names, whatever its state."""
    return session.get(OperatorInvite, token_hash(token))


def add_session(
    session: Session, *, org_id: str, operator_id: str, now: datetime, user_agent: str | None
) -> tuple[str, OperatorSession]:
    """A new session for the operator; its token (for the cookie) and row."""
    token = new_token()
    row = OperatorSession(
        token_hash=token_hash(token),
        org_id=org_id,
        operator_id=operator_id,
        csrf_token=secrets.token_urlsafe(24),
        created_at=now,
        expires_at=now + SESSION_FOR,
        last_used_at=now,
        user_agent=(user_agent or "")[:300] or None,
    )
    session.add(row)
    session.flush()
    return token, row


def get_session(session: Session, *, token: str) -> OperatorSession | None:
    """The session a cookie token names, whatever its state."""
    return session.get(OperatorSession, token_hash(token))


def revoke(session: Session, *, token: str, now: datetime) -> None:
    """End the session a token names (nothing if there is none)."""
    session.execute(
        update(OperatorSession)
        .where(col(OperatorSession.token_hash) == token_hash(token))
        .where(col(OperatorSession.revoked_at).is_(None))
        .values(revoked_at=now)
    )


def revoke_all(session: Session, *, operator_id: str, now: datetime) -> int:
    """End every session of the operator; how many were live."""
    result = session.execute(
        update(OperatorSession)
        .where(col(OperatorSession.operator_id) == operator_id)
        .where(col(OperatorSession.revoked_at).is_(None))
        .values(revoked_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def sessions_of(session: Session, *, operator_id: str) -> list[OperatorSession]:
    """The operator's sessions, newest first."""
    return list(
        session.exec(
            select(OperatorSession)
            .where(OperatorSession.operator_id == operator_id)
            .order_by(col(OperatorSession.created_at).desc())
        )
    )
