"""Alert decisions: identity, the notice ladder, which channel to avoid, the texts.

Pure: the ``Alert`` workflow imports these (HEALTH.md "Shape").
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import timedelta

from models.values import Channel, HealthStatus

#: An unacknowledged critical alert climbs to SMS after this long ...
SMS_AFTER = timedelta(minutes=15)
#: ... and to the backup contacts after this long.
BACKUP_AFTER = timedelta(minutes=30)
#: An acknowledged alert still firing this long after the acknowledgement: one reminder.
REMIND_AFTER = timedelta(hours=4)

#: Who a rung reaches: the first contact of the channel's list, or everyone after it.
MAIN = "main"
BACKUP = "backup"

#: Subjects whose trouble is the channel itself: a notice about it goes the other way.
_SMS_SUBJECTS = frozenset({"twilio", "sms", "whatsapp"})
_EMAIL_SUBJECTS = frozenset({"resend", "email"})


def alert_workflow_id(org_id: str, rule: str, subject: str) -> str:
    """``alert-{org}-{rule}-{subject}``: every repeat of one condition lands on one alert."""
    return f"alert-{org_id}-{rule}-{subject}"


def ack_code(alert_id: str) -> str:
    """The four digits a person texts back (``ACK 4821``) to acknowledge this alert."""
    digest = hashlib.sha256(alert_id.encode()).digest()
    return f"{int.from_bytes(digest[:4], 'big') % 10_000:04d}"


_ACK = re.compile(r"^\s*ack\s*(\d{4})\s*[.!]?\s*$", re.IGNORECASE)


def ack_code_in(text: str) -> str | None:
    """The code of an ``ACK 4821`` text (any case, with or without the space), else ``None``."""
    found = _ACK.match(text)
    return found.group(1) if found else None


def channel_to_avoid(rule: str, subject: str) -> Channel | None:
    """The channel an alert must not use because the alert is about it: a notice about
    Twilio through Twilio would not arrive (HEALTH.md: "an alert about Twilio goes out by
    email and one about email goes out by SMS")."""
    del rule  # every rule's subject names what it is about
    if subject in _SMS_SUBJECTS:
        return Channel.SMS
    if subject in _EMAIL_SUBJECTS:
        return Channel.EMAIL
    return None


@dataclass(frozen=True, kw_only=True)
class Rung:
    """One step of the ladder: ``after`` the alert fired, unacknowledged, notify ``who`` on
    ``channel``."""

    step: str
    after: timedelta
    channel: Channel
    who: str


def ladder(severity: HealthStatus, *, avoid: Channel | None) -> tuple[Rung, ...]:
    """The notices of an unacknowledged alert, in order (bounded: at most three).

    The main contact by email at once (by SMS if the alert is about email); a critical one
    then climbs: the main contact by SMS after ``SMS_AFTER`` (by email again if the alert is
    about SMS), then the backup contacts after ``BACKUP_AFTER``. A warning notifies once.
    """
    primary = Channel.SMS if avoid == Channel.EMAIL else Channel.EMAIL
    rungs = [Rung(step="rung-0", after=timedelta(0), channel=primary, who=MAIN)]
    if severity == HealthStatus.CRITICAL:
        second = Channel.EMAIL if avoid == Channel.SMS else Channel.SMS
        rungs.append(Rung(step="rung-1", after=SMS_AFTER, channel=second, who=MAIN))
        rungs.append(Rung(step="rung-2", after=BACKUP_AFTER, channel=primary, who=BACKUP))
    return tuple(rungs)


def worse(a: HealthStatus, b: HealthStatus) -> HealthStatus:
    """The graver of two verdicts (``unknown`` counts as nothing)."""
    order = (HealthStatus.UNKNOWN, HealthStatus.OK, HealthStatus.WARNING, HealthStatus.CRITICAL)
    return a if order.index(a) >= order.index(b) else b


def lasted(duration: timedelta) -> str:
    """``3 h 5 min``, ``12 min``, ``40 s``: how long an alert lasted, for its recovery notice."""
    seconds = int(duration.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} days {hours % 24} h"


def notice_text(
    *,
    severity: HealthStatus,
    summary: str,
    detail: str,
    code: str,
    link: str,
    recovered_after: timedelta | None = None,
) -> tuple[str, str]:
    """The subject and body of a notice: firing, or recovered (with how long it lasted)."""
    if recovered_after is not None:
        subject = f"[keepwarm] Resolved: {summary}"
        body = f"Resolved after {lasted(recovered_after)}: {summary}. {link}"
        return subject, body
    label = "CRITICAL" if severity == HealthStatus.CRITICAL else "Warning"
    subject = f"[keepwarm] {label}: {summary}"
    body = f"keepwarm {label.lower()}: {summary}. {detail} Reply ACK {code} to acknowledge. {link}"
    return subject, " ".join(body.split())
