"""Per-sender pacing at claim time (``models.rules.pacing``): a paced send takes its
sender's next slot, or is held back (``Deferred``) until its turn in the sender's queue.

Lock order: the claim's contact first, then the sender's pace row.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session

from models.rules.compliance import Deferred, Verdict
from models.rules.messages import sender_address
from models.rules.pacing import (
    Queued,
    decide,
    interval,
    pace_reason,
    sender_key,
    stale_after,
)
from models.schemas import OrgSettings
from models.store.messages import note_deferral
from models.store.pacing import (
    count_ahead,
    leave_queue,
    lock_sender,
    sent_from,
    wait_in_queue,
    waiting,
)
from models.tables import utcnow
from models.values import Channel


def take_slot(
    session: Session,
    *,
    settings: OrgSettings,
    org_id: str,
    channel: Channel,
    key: str,
    priority: int,
    now: datetime,
    wait: bool = True,
) -> None:
    """Take the next slot of the sender ``channel`` sends from, if it is paced; else raise
    ``Deferred`` until this send's turn (``queued`` says where it waits). With ``wait``
    false (a visit's or payment's message) the send goes now and uses up a slot.

    ``now`` is the attempt's scheduled time; a send that starts later (a busy worker) is
    paced by the clock, so a backlog never leaves in a burst."""
    per_second = settings.pacing.per_second(channel)
    if per_second is None:
        return
    address = (
        settings.vapi_phone_number_id
        if channel == Channel.VOICE
        else sender_address(settings, channel)
    )
    sender = sender_key(channel, address, org_id=org_id)
    clock = max(now, utcnow())
    pace = lock_sender(session, sender=sender)
    gap = interval(per_second)
    next_at = pace.next_at
    if next_at is not None and pace.gap_s is not None and pace.gap_s != gap.total_seconds():
        # The pace changed since the next slot was counted: count it again from the last send.
        next_at = next_at - timedelta(seconds=pace.gap_s) + gap
    if not wait:
        sent_from(session, pace=pace, next_at=max(next_at or clock, clock) + gap, gap=gap, key=key)
        return
    place = waiting(session, key=key)
    since = place.since if place is not None else clock
    ahead = count_ahead(
        session,
        sender=sender,
        key=key,
        priority=priority,
        since=since,
        live_since=clock - stale_after(gap),
    )
    slot = decide(next_at=next_at, gap=gap, ahead=ahead, now=clock)
    if slot.go:
        sent_from(session, pace=pace, next_at=slot.next_at, gap=gap, key=key)
        return
    assert slot.until is not None
    reason = pace_reason(channel=channel, address=address, per_second=per_second, ahead=slot.ahead)
    queued = Queued(
        key=key,
        sender=sender,
        org_id=org_id,
        priority=priority,
        since=since,
        due_at=slot.until,
    )
    raise Deferred(Verdict(until=slot.until, reason=reason), queued=queued)


def note_hold(
    session: Session,
    *,
    org_id: str,
    lead_id: str,
    channel: Channel,
    deferred: Deferred,
    key: str,
) -> None:
    """A touch held back at its claim, in one transaction: its place in its sender's queue
    kept (held for another reason: given up) and the hold on the lead's timeline (a pace's
    wait once per touch, however often it waits again)."""
    if deferred.queued is not None:
        wait_in_queue(session, queued=deferred.queued)
    else:  # held for another reason (quiet hours, a takeover): not waiting for its sender
        leave_queue(session, key=key)
    note_deferral(
        session,
        org_id=org_id,
        lead_id=lead_id,
        channel=channel,
        verdict=deferred.verdict,
        key=key if deferred.queued is not None else None,
    )
