"""Per-sender pacing: a sender (a number, a WhatsApp sender, an email domain, a Vapi phone
number) sends no faster than its configured rate, and a held-back batch leaves hottest
lead first. Pure: the store keeps each sender's next free slot and who is waiting.

How a send asks for a slot (``decide``): it goes at once when nobody better is waiting and
the sender's next slot has come; otherwise it waits until its turn, counted from the
sender's next slot by how many waiting sends are ahead of it (a higher score, or the same
score and waiting longer). When it comes back it asks again: a hotter lead that arrived
meanwhile goes first. A waiter that does not come back soon after its turn (its lead
replied, its sequence ended: ``stale_after``) stops holding the others up.

Each org paces its own senders: two orgs that send from the same number (or the same email
domain) never share a queue, so neither can slow or reorder the other's sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from models.values import Channel

#: How the waiting reason starts: a pace hold is not the compliance gate's, so it never
#: counts towards a touch's deferral cap (``workflows.policies.send_touch``).
PACE_REASON = "paced"

#: The least time a waiter past its turn still holds the others up. A timer fires late when
#: its worker is busy or was replaced: a stopped worker's tasks wait up to 10 s on its own
#: (sticky) queue before the server hands them to another, so with 2 s a colder send went
#: ahead of a hotter one across a worker restart.
STALE_GRACE = timedelta(seconds=15)


def stale_after(gap: timedelta) -> timedelta:
    """How long past its turn a waiter that has not come back is assumed gone: two gaps,
    at least ``STALE_GRACE``. One that comes back later still goes by its score."""
    return max(2 * gap, STALE_GRACE)


def pace_address(channel: Channel, address: str | None) -> str | None:
    """The sender a pace is for: the number (SMS, WhatsApp, the Vapi number's id) or the
    email domain (``None``: no sender set, the org's own)."""
    if address and channel == Channel.EMAIL:
        return address.rsplit("@", 1)[-1].strip(" >").lower()
    return address or None


def sender_key(channel: Channel, address: str | None, *, org_id: str) -> str:
    """The pace's key: the org's own sender on ``channel`` (``pace_address``)."""
    return f"{org_id}:{channel.value}:{pace_address(channel, address) or '-'}"


def interval(per_second: float) -> timedelta:
    """The time between two sends of a sender paced at ``per_second``."""
    return timedelta(seconds=1 / per_second)


@dataclass(frozen=True, kw_only=True)
class Queued:
    """A send waiting for its sender: its key, its score (the queue's order), since when it
    waits and when its turn should come."""

    key: str
    sender: str
    org_id: str
    priority: int
    since: datetime
    due_at: datetime


@dataclass(frozen=True, kw_only=True)
class Slot:
    """A pace decision: go now (``go``, the sender's next slot becomes ``next_at``), or wait
    until ``until`` (``ahead`` sends before this one)."""

    go: bool
    next_at: datetime
    until: datetime | None = None
    ahead: int = 0


def decide(*, next_at: datetime | None, gap: timedelta, ahead: int, now: datetime) -> Slot:
    """Whether a send goes now, given the sender's next free slot (``None``: never sent),
    the gap between sends and how many waiting sends are ahead of it.

    A send that goes moves the next slot one ``gap`` on from the slot it took. A slot taken
    a little late (a timer fires late) is counted from when it was due, so small delays do
    not slow the pace; one taken more than a gap late is counted from now (no burst after
    a quiet spell)."""
    free = now if next_at is None or next_at <= now else next_at
    if ahead == 0 and free == now:
        base = next_at if next_at is not None and now - next_at < gap else now
        return Slot(go=True, next_at=base + gap)
    return Slot(go=False, next_at=next_at or now, until=free + gap * ahead, ahead=ahead)


def pace_reason(*, channel: Channel, address: str | None, per_second: float, ahead: int) -> str:
    """What a paced send's wait says (the lead's "why is this lead waiting")."""
    rate = (
        f"{per_second:g} a second" if per_second >= 1 else f"one every {1 / per_second:g} seconds"
    )
    queue = f"; {ahead} ahead" if ahead else ""
    who = pace_address(channel, address) or f"the {_CHANNEL_WORDS[channel]} sender"
    return f"{PACE_REASON}: {who} sends {rate}{queue}"


#: How a pace's reason names a channel whose sender has no address set.
_CHANNEL_WORDS = {
    Channel.SMS: "SMS",
    Channel.WHATSAPP: "WhatsApp",
    Channel.EMAIL: "email",
    Channel.VOICE: "calls",
}
