"""Nudge sequences: the default ones, and when a step falls due in the recipient's local
time. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from models.schemas import SequenceIn, SequenceStep
from models.values import Channel, Intent

#: The sequence every cart lead (started or abandoned) runs, whatever its intent.
CART_RECOVERY = "cart_recovery"


#: The lead source of cart events.
CART_SOURCE = "cart"


#: What a new org starts with: quick texts for hot leads, spaced emails for the rest.
DEFAULTS: dict[str, SequenceIn] = {
    "hot": SequenceIn(
        applies_to=[Intent.HIGH_VALUE, Intent.ENGAGED],
        steps=[
            SequenceStep(
                after=timedelta(minutes=15),
                channel=Channel.SMS,
                template="Hi {first_name}, it's {org_name} again: shall we book you in? "
                "Reply with a day that suits you.",
            ),
            SequenceStep(
                after=timedelta(days=1),
                channel=Channel.EMAIL,
                template="Hi {first_name}, following up on your enquiry with {org_name}. "
                "Reply to this email and we'll get you booked.",
            ),
            SequenceStep(
                after=timedelta(days=2),
                channel=Channel.SMS,
                template="Hi {first_name}, last check from {org_name}: still keen? Reply YES.",
            ),
        ],
        max_attempts=3,
    ),
    CART_RECOVERY: SequenceIn(
        applies_to=list(Intent),
        steps=[
            SequenceStep(
                after=timedelta(hours=1),
                channel=Channel.EMAIL,
                template="Hi {first_name}, you left something in your basket at {org_name}. "
                "It's saved for you: reply if you have any questions.",
            ),
            SequenceStep(
                after=timedelta(days=1),
                channel=Channel.SMS,
                template="Hi {first_name}, your {org_name} basket is still waiting for you.",
            ),
            SequenceStep(
                after=timedelta(days=2),
                channel=Channel.EMAIL,
                template="Hi {first_name}, last reminder from {org_name} about your basket.",
            ),
        ],
        max_attempts=3,
    ),
    "nurture": SequenceIn(
        applies_to=[Intent.WINDOW_SHOPPER, Intent.BROWSING],
        steps=[
            SequenceStep(
                after=timedelta(days=1),
                channel=Channel.EMAIL,
                template="Hi {first_name}, thanks for looking at {org_name}. "
                "Any questions? Just reply.",
            ),
            SequenceStep(
                after=timedelta(days=4),
                channel=Channel.EMAIL,
                template="Hi {first_name}, a reminder that {org_name} is here when you're ready.",
            ),
        ],
        max_attempts=2,
    ),
}


def local_due(anchor: datetime, after: timedelta, zone: ZoneInfo) -> datetime:
    """``anchor`` plus ``after``: whole days on the local calendar, the rest in elapsed time.

    A wall-clock time the DST change skips (02:30 on the spring-forward night) comes out an
    hour later on the clock; an ambiguous one takes its first occurrence.
    """
    wall = anchor.astimezone(zone).replace(tzinfo=None) + timedelta(days=after.days)
    rest = after - timedelta(days=after.days)
    return wall.replace(tzinfo=zone).astimezone(UTC) + rest
