"""Domain errors the layers raise and the API and activities name: a missing row, a closed
lead, a held thread, a refused reply. Nothing here knows HTTP or Temporal."""

from __future__ import annotations

from datetime import datetime

from models.tables import (
    Operator,
)


class NotFound(LookupError):
    """The row does not exist in this org."""


class LeadClosed(Exception):
    """The lead has already converted, been lost or opted out."""

    def __init__(self, stage: str) -> None:
        super().__init__(f"the lead is {stage}")
        self.stage = stage


class EventIdTaken(Exception):
    """The event id was already used for something else."""


class InvalidCursor(ValueError):
    """A cursor that this sort did not hand out."""


class SameContact(ValueError):
    """A contact can't be merged into itself."""


class EscalationMissing(LookupError):
    """No such escalation in this org."""


class ThreadMissing(LookupError):
    """No such thread in this org."""


class ThreadHeld(Exception):
    """Another operator holds the thread."""

    def __init__(self, *, holder: Operator | None, holder_id: str, since: datetime | None):
        """Who holds it and since when."""
        name = holder.name if holder is not None else holder_id
        when = f" since {since:%Y-%m-%d %H:%M} UTC" if since else ""
        super().__init__(f"{name} holds this thread{when}; they must release it first.")
        self.holder_id = holder_id


class ReplyRefused(Exception):
    """The reply can't go to this person on this channel (``code`` names why)."""

    def __init__(self, code: str, message: str) -> None:
        """``code`` (snake_case) and what the operator can do about it."""
        super().__init__(message)
        self.code = code


class NoAddress(ReplyRefused):
    """The contact has no address for the channel asked for."""


class OperatorMissing(LookupError):
    """No such operator in this org."""


class OperatorExists(Exception):
    """Another operator of the org already signs in with this email."""


class ProviderExists(Exception):
    """Another provider of the org already has this name."""


class BookingClosed(Exception):
    """The visit can't change that way any more (cancelled, completed, missed)."""

    def __init__(self, status: str, detail: str | None = None) -> None:
        super().__init__(detail or f"the booking is {status}")
        self.status = status
        self.detail = detail or f"The booking is {status.replace('_', ' ')}."


class SignInRefused(Exception):
    """Wrong email or password (which of the two is never said)."""


class SignInLocked(Exception):
    """Too many wrong passwords in a row: sign-in is locked until ``until``."""

    def __init__(self, until: datetime) -> None:
        """Locked until ``until``."""
        super().__init__(f"Too many wrong passwords; try again after {until:%H:%M} UTC.")
        self.until = until


class InviteInvalid(Exception):
    """The invite link is unknown, used or expired."""


class PasswordRejected(ValueError):
    """The chosen password is too weak; the message says why."""
