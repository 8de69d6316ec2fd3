"""How operators sign in: how long links and sessions last, when sign-in locks, which
passwords are refused. Pure."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

#: An invite link works once, for this long.
INVITE_FOR = timedelta(days=7)
#: A session ends this long after sign-in, whatever happens.
SESSION_FOR = timedelta(days=7)
#: ... or this long after it was last used.
SESSION_IDLE = timedelta(hours=12)
#: How stale ``last_used_at`` may get before a request moves it (saves a write per request).
SESSION_TOUCH_EVERY = timedelta(minutes=5)
#: Wrong passwords in a row before sign-in locks, and for how long.
SIGN_IN_LOCK_AFTER = 5
SIGN_IN_LOCK_FOR = timedelta(minutes=15)

PASSWORD_MIN = 10
PASSWORD_MAX = 256
#: The passwords people pick first (NIST SP 800-63B: refuse known-weak ones).
_COMMON = frozenset(
    {
        "password123",
        "password1234",
        "1234567890",
        "12345678910",
        "qwertyuiop",
        "iloveyou123",
        "letmein1234",
        "welcome123",
        "administrator",
        "passw0rd123",
        "changeme123",
        "0987654321",
        "1q2w3e4r5t",
        "qwerty12345",
        "abcdefghij",
    }
)


def password_problem(password: str, *, email: str | None) -> str | None:
    """Why ``password`` is refused, or ``None`` when it will do."""
    if len(password) < PASSWORD_MIN:
        return f"Use at least {PASSWORD_MIN} characters."
    if len(password) > PASSWORD_MAX:
        return f"Use at most {PASSWORD_MAX} characters."
    lowered = password.lower()
    if lowered in _COMMON or len(set(password)) < 4:
        return "That password is too easy to guess; choose another."
    if email and (lowered == email.lower() or lowered == email.split("@")[0].lower()):
        return "Don't use your email address as your password."
    return None


def token_hash(token: str) -> str:
    """What is stored for a secret token (an invite, a session): its SHA-256, in hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def session_live(
    *, expires_at: datetime, last_used_at: datetime, revoked_at: datetime | None, now: datetime
) -> bool:
    """Whether a session still signs its browser in at ``now``."""
    return revoked_at is None and now < expires_at and now < last_used_at + SESSION_IDLE


def locked(locked_until: datetime | None, *, now: datetime) -> bool:
    """Whether sign-in is locked at ``now``."""
    return locked_until is not None and now < locked_until
