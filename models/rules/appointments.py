"""An appointment's rules: when each reminder goes (the quiet hours move it, never past the
visit), what a customer's reply to an appointment text means, and which reply is a rating.
Pure: the clock, the visit and the send window come in as arguments (the ``Appointment``
workflow calls these with ``workflow.now()``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from models.rules.compliance import next_open
from models.rules.messages import fill_safe


@dataclass(frozen=True, kw_only=True)
class PlannedReminder:
    """One reminder of a visit: when it goes, or why it doesn't."""

    #: How long before the visit the org asked for it.
    offset: timedelta
    #: When it goes (UTC); ``None``: it is skipped (``note`` says why).
    at: datetime | None
    #: Why it moved or is skipped, in words an operator can read; empty when on time.
    note: str = ""


def plan_reminders(
    *,
    starts_at: datetime,
    offsets: list[timedelta],
    now: datetime,
    zone: ZoneInfo,
    window: tuple[time, time] | None,
    weekdays_only: bool = False,
) -> list[PlannedReminder]:
    """The reminders of a visit at ``starts_at``, planned at ``now``, earliest first.

    Each is due ``offset`` before the visit. One due in the quiet hours (outside ``window``,
    in ``zone``) goes when the window next opens if that is still before the visit, else it
    is skipped; one already due at ``now`` (a late booking, a visit moved closer) is skipped,
    as is one that would go at or after a later reminder (two moved to the same opening:
    the nearer one to the visit goes).
    """
    # Offsets are exact durations (P1D is 24 hours, across a change of the clocks too).
    starts_at, now = starts_at.astimezone(UTC), now.astimezone(UTC)
    planned: list[PlannedReminder] = []
    for offset in sorted(set(offsets), reverse=True):
        due = starts_at - offset
        if due <= now:
            planned.append(
                PlannedReminder(
                    offset=offset,
                    at=None,
                    note=f"not sent: booked less than {duration_words(offset)} before the visit",
                )
            )
            continue
        at = (
            due
            if window is None
            else next_open(due, zone=zone, window=window, weekdays_only=weekdays_only)
        )
        if at >= starts_at:
            planned.append(
                PlannedReminder(
                    offset=offset,
                    at=None,
                    note=f"not sent: quiet hours until after the visit ({_local(at, zone)})",
                )
            )
            continue
        note = "" if at == due else f"moved out of quiet hours to {_local(at, zone)}"
        planned.append(PlannedReminder(offset=offset, at=at, note=note))
    # A reminder moved to the same opening as a nearer one (or past it) goes with it.
    for index, reminder in enumerate(planned):
        later = [other.at for other in planned[index + 1 :] if other.at is not None]
        if reminder.at is not None and later and reminder.at >= min(later):
            planned[index] = PlannedReminder(
                offset=reminder.offset,
                at=None,
                note="not sent: the quiet hours put it with the next reminder",
            )
    return planned


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%a %d %b %H:%M")


def duration_words(offset: timedelta) -> str:
    """``1 day``, ``2 h``, ``90 min``, ``30 s``."""
    seconds = int(offset.total_seconds())
    if seconds % 86400 == 0:
        days = seconds // 86400
        return f"{days} day{'s' if days != 1 else ''}"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


class AppointmentReply(StrEnum):
    """What a customer's reply to an appointment text asks for."""

    CONFIRM = "confirm"
    RESCHEDULE = "reschedule"


#: Replies that confirm a visit, and that ask to move it (case and punctuation aside). Never
#: CANCEL or STOP: those words are opt-outs (``rules.keywords``).
_CONFIRM = frozenset({"c", "yes", "y", "confirm", "confirmed"})
_RESCHEDULE = frozenset({"r", "reschedule", "rebook"})


def appointment_reply(body: str) -> AppointmentReply | None:
    """``confirm`` for C / YES, ``reschedule`` for R, else ``None`` (an ordinary message)."""
    word = re.sub(r"[^a-z]", "", body.strip().lower())
    if word in _CONFIRM:
        return AppointmentReply.CONFIRM
    if word in _RESCHEDULE:
        return AppointmentReply.RESCHEDULE
    return None


_RATING = re.compile(r"^\s*(?P<n>[1-5])\s*(?:/\s*5|out of 5|stars?|\*)?\s*[.!]?\s*$", re.IGNORECASE)


def rating_of(body: str) -> int | None:
    """The 1 to 5 rating a reply to a rating request gives: ``4``, ``4/5``, ``4 stars``,
    ``★★★★``; ``None`` for anything else (a comment is a message, not a rating)."""
    stars = body.strip()
    if stars and set(stars) <= {"★", "⭐"} and len(stars) <= 5:
        return len(stars)
    found = _RATING.match(body)
    return int(found["n"]) if found else None


class AppointmentText(StrEnum):
    """The messages a visit sends the customer (each once per key)."""

    CONFIRMATION = "confirmation"
    REMINDER = "reminder"
    MOVED = "moved"
    CANCELLED = "cancelled"
    CONFIRMED = "confirmed"
    RESCHEDULE_ASKED = "reschedule_asked"
    ON_MY_WAY = "on_my_way"
    RATING_REQUEST = "rating_request"
    RATED = "rated"


def appointment_text(
    kind: AppointmentText,
    *,
    starts_at: datetime,
    zone: ZoneInfo,
    service: str | None,
    provider: str | None = None,
    confirm_by_reply: bool = True,
    offset: timedelta | None = None,
    rating: int | None = None,
) -> str:
    """The words of an appointment message, with ``{first_name}`` and ``{org_name}`` left for
    the send to fill. No message asks for CANCEL or STOP: those words opt a customer out."""
    what = fill_safe(service) if service else "visit"
    when = fill_safe(starts_at.astimezone(zone).strftime("%a %d %b at %H:%M"))
    who = fill_safe(provider) if provider else "Your {org_name} pro"
    ask = " Reply C to confirm or R to reschedule." if confirm_by_reply else ""
    if kind == AppointmentText.CONFIRMATION:
        return f"Hi {{first_name}}, your {what} with {{org_name}} is booked for {when}.{ask}"
    if kind == AppointmentText.REMINDER:
        ahead = f" ({duration_words(offset)} to go)" if offset else ""
        return f"Reminder: your {what} with {{org_name}} is on {when}{ahead}.{ask}"
    if kind == AppointmentText.MOVED:
        return f"Hi {{first_name}}, your {what} with {{org_name}} has moved to {when}.{ask}"
    if kind == AppointmentText.CANCELLED:
        return (
            f"Hi {{first_name}}, your {what} with {{org_name}} on {when} is cancelled. "
            "Reply here if you'd like a new time."
        )
    if kind == AppointmentText.CONFIRMED:
        return f"Thanks {{first_name}}, you're confirmed for {when}. See you then!"
    if kind == AppointmentText.RESCHEDULE_ASKED:
        return (
            f"Thanks {{first_name}}, we'll be in touch shortly to find a new time for your {what}."
        )
    if kind == AppointmentText.ON_MY_WAY:
        return f"{who} is on the way for your {what}."
    if kind == AppointmentText.RATING_REQUEST:
        return (
            f"Thanks for choosing {{org_name}}, {{first_name}}! How was your {what}? "
            "Reply with a number from 1 (poor) to 5 (great)."
        )
    if kind == AppointmentText.RATED:
        if rating is not None and rating <= 2:
            return "We're sorry to hear that. Someone from {org_name} will be in touch."
        return "Thank you for your rating!"
    raise ValueError(kind)
