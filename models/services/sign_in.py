"""Operators sign in as themselves: accept an invite (choose a password), sign in and out,
find the operator behind a session cookie, remove an operator.

Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106's second recommended
profile); only tokens' SHA-256 is stored. A wrong password counts against the account in
the database, so a lock holds across API processes and restarts.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, col, func, select

from models.database import lock
from models.errors import InviteInvalid, OperatorMissing, PasswordRejected
from models.rules.sign_in import (
    SESSION_TOUCH_EVERY,
    SIGN_IN_LOCK_AFTER,
    SIGN_IN_LOCK_FOR,
    locked,
    password_problem,
    session_live,
    token_hash,
)
from models.rules.takeover import Hold
from models.services.takeover import release_hold
from models.store import sessions as store
from models.store.operators import get_operator
from models.store.orgs import get_org
from models.tables import Operator, OperatorInvite, OperatorSession, Org, Thread

INVITE_INVALID = "This invite link has been used or has expired; ask the owner for a new one."
_hasher = PasswordHasher()
#: Verified against when no account matches, so an unknown email takes as long as a known one.
_DUMMY_HASH = _hasher.hash("keepwarm: no such account")


@dataclass(frozen=True)
class SignedIn:
    """A new session: the cookie's token and the operator it signs in."""

    token: str
    operator: Operator
    session: OperatorSession


@dataclass(frozen=True)
class SignInFailed:
    """Wrong email or password; ``locked_until`` when this attempt (or earlier ones) locked it."""

    locked_until: datetime | None = None


@dataclass(frozen=True)
class Current:
    """Who a live session signs in: the operator, their org, the session row."""

    operator: Operator
    org: Org
    session: OperatorSession


def _check_password(password: str, *, email: str | None) -> None:
    problem = password_problem(password, email=email)
    if problem is not None:
        raise PasswordRejected(problem)


def accept_invite(
    session: Session, *, token: str, password: str, now: datetime, user_agent: str | None
) -> SignedIn:
    """Set the invited operator's password and sign them in; the invite is used up.

    ``InviteInvalid`` for an unknown, used or expired link; ``PasswordRejected`` for a weak
    password (the invite stays usable).
    """
    # The invite row locked (and read afresh): two submissions of one link at once, one wins.
    invite = lock(session, OperatorInvite, token_hash(token))
    if invite is None or invite.used_at is not None or invite.expires_at <= now:
        raise InviteInvalid(INVITE_INVALID)
    operator = lock(session, Operator, invite.operator_id)
    if operator is None or operator.removed_at is not None:
        raise InviteInvalid(INVITE_INVALID)
    _check_password(password, email=operator.email)
    invite.used_at = now
    operator.password_hash = _hasher.hash(password)
    operator.failed_sign_ins = 0
    operator.locked_until = None
    session.add_all([invite, operator])
    # A new password (a first one, or a reset by a new link) signs every other browser out.
    store.revoke_all(session, operator_id=operator.id, now=now)
    cookie, row = store.add_session(
        session, org_id=operator.org_id, operator_id=operator.id, now=now, user_agent=user_agent
    )
    return SignedIn(token=cookie, operator=operator, session=row)


def _verify(operator: Operator, password: str) -> bool:
    try:
        return operator.password_hash is not None and _hasher.verify(
            operator.password_hash, password
        )
    except (VerificationError, InvalidHashError):
        return False


def sign_in(
    session: Session,
    *,
    email: str,
    password: str,
    now: datetime,
    user_agent: str | None,
    replacing: str | None = None,
) -> SignedIn | SignInFailed:
    """Sign in with email and password: a new session (the browser's old one, ``replacing``,
    ends: the token rotates at every sign-in), or why not.

    Failures are returned, not raised, so the wrong-password count they add is committed.
    """
    candidates = list(
        session.exec(
            select(Operator)
            .where(func.lower(col(Operator.email)) == email.strip().lower())
            .where(col(Operator.removed_at).is_(None))
            .where(col(Operator.password_hash).is_not(None))
            .order_by(col(Operator.created_at))
        )
    )
    if not candidates:
        _waste()
        return SignInFailed()
    locked_until: datetime | None = None
    tried: list[Operator] = []
    for candidate in candidates:
        operator = lock(session, Operator, candidate.id)
        if operator is None:
            continue
        if locked(operator.locked_until, now=now):
            locked_until = operator.locked_until
            continue
        if _verify(operator, password):
            return _signed_in(session, operator, password, now, user_agent, replacing)
        tried.append(operator)
    # No account of this email took the password: each one tried counts a failure (the same
    # person in two orgs signing in to one never locks the other).
    for operator in tried:
        operator.failed_sign_ins += 1
        if operator.failed_sign_ins >= SIGN_IN_LOCK_AFTER:
            operator.failed_sign_ins = 0
            operator.locked_until = now + SIGN_IN_LOCK_FOR
            locked_until = operator.locked_until
        session.add(operator)
    return SignInFailed(locked_until=locked_until)


def _waste() -> None:
    """Spend what a password check costs, so an unknown email answers no faster."""
    with contextlib.suppress(VerificationError):
        _hasher.verify(_DUMMY_HASH, "not the password")


def _signed_in(
    session: Session,
    operator: Operator,
    password: str,
    now: datetime,
    user_agent: str | None,
    replacing: str | None,
) -> SignedIn:
    operator.failed_sign_ins = 0
    operator.locked_until = None
    if operator.password_hash and _hasher.check_needs_rehash(operator.password_hash):
        operator.password_hash = _hasher.hash(password)
    session.add(operator)
    if replacing:
        store.revoke(session, token=replacing, now=now)
    cookie, row = store.add_session(
        session, org_id=operator.org_id, operator_id=operator.id, now=now, user_agent=user_agent
    )
    return SignedIn(token=cookie, operator=operator, session=row)


def current(
    session: Session, *, token: str, now: datetime, activity: bool = True
) -> Current | None:
    """Who the session cookie ``token`` signs in at ``now``; ``None`` for an unknown,
    revoked, expired or idle session, or a removed operator. ``activity``: the request is a
    person's (it keeps the session from idling out); polls, heartbeats and streams are not."""
    row = store.get_session(session, token=token)
    if row is None or not session_live(
        expires_at=row.expires_at, last_used_at=row.last_used_at, revoked_at=row.revoked_at, now=now
    ):
        return None
    operator = session.get(Operator, row.operator_id)
    if operator is None or operator.removed_at is not None or operator.org_id != row.org_id:
        return None
    if activity and now - row.last_used_at > SESSION_TOUCH_EVERY:
        row.last_used_at = now
        session.add(row)
    return Current(operator=operator, org=get_org(session, org_id=row.org_id), session=row)


def sign_out(session: Session, *, token: str, now: datetime) -> None:
    """End the session ``token`` names."""
    store.revoke(session, token=token, now=now)


def reinvite(session: Session, *, org_id: str, operator_id: str, now: datetime) -> str:
    """A fresh invite link token for the org's operator (earlier links stop working)."""
    operator = get_operator(session, org_id=org_id, operator_id=operator_id)
    if operator.removed_at is not None:
        raise OperatorMissing(operator_id)
    return store.add_invite(session, org_id=org_id, operator_id=operator.id, now=now)


def remove_operator(
    session: Session, *, org_id: str, operator_id: str, now: datetime
) -> list[Hold]:
    """The owner removes an operator: the threads they hold go back to the AI (the holds
    returned, for their workflows to hear), every session ends at once, no invite works,
    and they can't sign in; their messages and decisions stay attributed to them."""
    operator = lock(session, Operator, operator_id)
    if operator is None or operator.org_id != org_id or operator.removed_at is not None:
        raise OperatorMissing(operator_id)
    held = session.exec(
        select(Thread.id).where(Thread.org_id == org_id, Thread.held_by == operator_id)
    ).all()
    holds = [
        release_hold(session, org_id=org_id, thread_id=thread_id, operator_id=operator_id, now=now)
        for thread_id in held
    ]
    operator.removed_at = now
    operator.password_hash = None
    operator.last_seen_at = None
    session.add(operator)
    store.cancel_invites(session, operator_id=operator_id, now=now)
    store.revoke_all(session, operator_id=operator_id, now=now)
    return holds


def invited(session: Session, *, token: str, now: datetime) -> Operator | None:
    """The operator a still-valid invite link is for (``None`` if it is not valid)."""
    invite = store.get_invite(session, token=token)
    if invite is None or invite.used_at is not None or invite.expires_at <= now:
        return None
    operator = session.get(Operator, invite.operator_id)
    return operator if operator is not None and operator.removed_at is None else None


def owner_setup(session: Session, *, org_id: str, now: datetime) -> tuple[str, str | None] | None:
    """The org's first owner who can sign in with an email: their email, and a fresh invite
    token while they have no password yet (earlier links stop working); ``None`` without one."""
    owner = session.exec(
        select(Operator)
        .where(Operator.org_id == org_id, Operator.role == "owner")
        .where(col(Operator.removed_at).is_(None), col(Operator.email).is_not(None))
        .order_by(col(Operator.created_at))
    ).first()
    if owner is None or owner.email is None:
        return None
    if owner.password_hash is not None:
        return owner.email, None
    return owner.email, store.add_invite(session, org_id=org_id, operator_id=owner.id, now=now)
