"""Bookings: a lead books a visit, the visit moves, is cancelled or happens, the customer
confirms, asks to move it, rates it or complains; and what the ``Appointment`` workflow sends.

The booking row is the truth. Each change is written here first (the booking locked after its
contact); the workflow is then woken, reads the row again (``appointment_state``) and acts.
Every message it sends is claimed here against the row as it is at that moment
(``claim_appointment_message``), so a reminder of a time that has since moved or been
cancelled is never sent, even before the workflow hears of the change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from models.errors import BookingClosed, EventIdTaken, LeadClosed, NotFound
from models.ids import appointment_workflow_id
from models.payloads import AppointmentState, PlannedReminderState
from models.rules.appointments import (
    AppointmentReply,
    AppointmentText,
    appointment_reply,
    appointment_text,
    duration_words,
    plan_reminders,
    rating_of,
)
from models.rules.compliance import window_for
from models.rules.orgs import org_settings
from models.rules.providers import LOW_RATING
from models.services.escalations import escalate_thread
from models.services.outbound import (
    TransactionalClaim,
    claim_transactional,
    transactional_channel,
)
from models.store.bookings import (
    awaiting_rating,
    booking_of_receipt,
    get_booking,
    lock_booking,
    recently_completed,
    save_booking,
    upcoming_booking,
)
from models.store.contacts import recipient_of
from models.store.leads import get_lead, is_open
from models.store.orgs import get_org
from models.store.providers import get_provider
from models.store.receipts import record_intake_receipt
from models.store.threads import thread_of_contact
from models.store.timeline import add_to_timeline
from models.tables import Booking, Contact, Escalation, Lead, Org
from models.values import (
    UPCOMING_BOOKINGS,
    BookingStatus,
    Channel,
    EscalationReason,
    Priority,
    Stage,
    TimelineKind,
    VisitEvent,
    new_id,
)

#: A rating request is answered within this (a 1-5 reply later is an ordinary message).
RATING_WINDOW = timedelta(days=7)
#: A complaint this soon after a visit is counted against the visit.
COMPLAINT_WINDOW = timedelta(days=14)
#: A visit event may be reported this far ahead of the server's clock (clock skew).
EVENT_CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True, kw_only=True)
class BookingMade:
    """A booking recorded (or found again by its event id)."""

    booking_id: str
    workflow_id: str
    #: The lead's workflow to tell (it converts); ``None`` when the lead had converted already.
    lead_workflow_id: str | None
    duplicate: bool


@dataclass(frozen=True, kw_only=True)
class BookingChanged:
    """A booking after a change: the workflow to wake, and whether anything changed."""

    booking_id: str
    workflow_id: str
    version: int
    status: str
    changed: bool
    org_id: str
    lead_id: str


def _changed(booking: Booking, changed: bool) -> BookingChanged:
    return BookingChanged(
        org_id=booking.org_id,
        lead_id=booking.lead_id,
        booking_id=booking.id,
        workflow_id=booking.workflow_id,
        version=booking.version,
        status=booking.status,
        changed=changed,
    )


def _zone(session: Session, *, org: Org, lead: Lead | None, contact: Contact) -> ZoneInfo:
    who = recipient_of(session, lead=lead, contact=contact, settings=org_settings(org))
    return ZoneInfo(who.timezone)


def _when(moment: datetime, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%a %d %b %H:%M} ({zone.key})"


def _note(session: Session, booking: Booking, summary: str, **data: Any) -> None:
    add_to_timeline(
        session,
        org_id=booking.org_id,
        lead_id=booking.lead_id,
        kind=TimelineKind.BOOKING,
        summary=summary,
        data={"booking_id": booking.id, **data},
        booking_id=booking.id,
    )


def book(
    session: Session,
    *,
    org_id: str,
    lead_id: str,
    event_id: str,
    starts_at: datetime,
    ends_at: datetime | None,
    provider_id: str | None,
    service: str | None,
    address: str | None,
    note: str | None,
) -> BookingMade:
    """Record that the lead booked a visit (once per ``event_id``).

    Raises ``NotFound`` for another org's or an unknown lead (or provider: ``LookupError``
    with the provider's id), ``LeadClosed`` if the lead was lost or opted out (a converted
    lead may book again: a returning customer), ``EventIdTaken`` if the event id was used
    for another lead.
    """
    lead = get_lead(session, org_id=org_id, lead_id=lead_id)
    payload = {
        "starts_at": starts_at.isoformat(),
        "ends_at": ends_at.isoformat() if ends_at else None,
        "provider_id": provider_id,
        "service": service,
        "address": address,
        "note": note,
    }
    receipt, new = record_intake_receipt(
        session, org_id=org_id, event_id=f"booking:{event_id}", kind="booking", payload=payload
    )
    if not new:
        found = booking_of_receipt(session, receipt_id=receipt.id)
        if receipt.lead_id != lead_id or found is None:
            raise EventIdTaken(event_id)
        return BookingMade(
            booking_id=found.id,
            workflow_id=found.workflow_id,
            lead_workflow_id=lead.workflow_id if is_open(lead.stage) else None,
            duplicate=True,
        )
    if not is_open(lead.stage) and lead.stage != Stage.CONVERTED:
        raise LeadClosed(lead.stage)
    provider = (
        get_provider(session, org_id=org_id, provider_id=provider_id) if provider_id else None
    )
    receipt.lead_id = lead_id
    session.add(receipt)
    booking_id = new_id("bk")
    booking = Booking(
        id=booking_id,
        org_id=org_id,
        lead_id=lead_id,
        contact_id=lead.contact_id,
        receipt_id=receipt.id,
        workflow_id=appointment_workflow_id(org_id, booking_id),
        provider_id=provider.id if provider else None,
        starts_at=starts_at,
        ends_at=ends_at,
        service=service,
        address=address,
        note=note,
    )
    session.add(booking)
    session.flush()
    org = get_org(session, org_id=org_id)
    contact = session.get(Contact, lead.contact_id)
    assert contact is not None
    zone = _zone(session, org=org, lead=lead, contact=contact)
    what = f" {service}" if service else ""
    who = f" with {provider.name}" if provider else ""
    _note(
        session,
        booking,
        f"Booked{what} for {_when(starts_at, zone)}{who}",
        receipt_id=receipt.id,
        **payload,
    )
    return BookingMade(
        booking_id=booking.id,
        workflow_id=booking.workflow_id,
        lead_workflow_id=lead.workflow_id if is_open(lead.stage) else None,
        duplicate=False,
    )


def _locked(session: Session, *, org_id: str, booking_id: str) -> Booking:
    booking = lock_booking(session, org_id=org_id, booking_id=booking_id)
    if booking is None:
        raise NotFound(booking_id)
    return booking


def move_booking(
    session: Session,
    *,
    org_id: str,
    booking_id: str,
    starts_at: datetime | None,
    ends_at: datetime | None,
    provider_id: str | None,
    now: datetime,
) -> BookingChanged:
    """Move the visit or give it to another provider. A new start is a new ``version``: the
    reminders are planned again from it and the customer is told once. ``BookingClosed``
    once the visit is cancelled, completed or missed; the same values again change nothing."""
    booking = _locked(session, org_id=org_id, booking_id=booking_id)
    if booking.status not in UPCOMING_BOOKINGS:
        raise BookingClosed(booking.status)
    org = get_org(session, org_id=org_id)
    lead = get_lead(session, org_id=org_id, lead_id=booking.lead_id)
    contact = session.get(Contact, booking.contact_id)
    assert contact is not None
    zone = _zone(session, org=org, lead=lead, contact=contact)
    new_start = starts_at if starts_at is not None else booking.starts_at
    # A new start without a new end keeps the visit's length.
    new_end = ends_at
    if new_end is None and booking.ends_at is not None:
        new_end = booking.ends_at + (new_start - booking.starts_at)
    if new_end is not None and new_end <= new_start:
        raise ValueError("ends_at must be after starts_at")
    changed = False
    if provider_id is not None and provider_id != booking.provider_id:
        provider = get_provider(session, org_id=org_id, provider_id=provider_id)
        save_booking(session, booking, provider_id=provider.id, updated_at=now)
        _note(session, booking, f"Given to {provider.name}", provider_id=provider.id)
        changed = True
    if starts_at is not None and starts_at != booking.starts_at:
        was = booking.starts_at
        save_booking(
            session,
            booking,
            starts_at=starts_at,
            ends_at=new_end,
            version=booking.version + 1,
            # The customer confirmed (or asked to move) the old time, not this one, and the
            # provider's news was of the old time's visit.
            status=BookingStatus.SCHEDULED.value,
            confirmed_at=None,
            reschedule_requested_at=None,
            on_my_way_at=None,
            arrived_at=None,
            updated_at=now,
        )
        _note(
            session,
            booking,
            f"Moved from {_when(was, zone)} to {_when(starts_at, zone)}",
            version=booking.version,
            was=was.isoformat(),
            starts_at=starts_at.isoformat(),
        )
        changed = True
    elif new_end != booking.ends_at:
        save_booking(session, booking, ends_at=new_end, updated_at=now)
        changed = True
    return _changed(booking, changed)


def cancel_booking(
    session: Session, *, org_id: str, booking_id: str, reason: str | None, now: datetime
) -> BookingChanged:
    """Cancel the visit: no reminder goes after it. Again: nothing changes. ``BookingClosed``
    once the visit was completed or missed."""
    booking = _locked(session, org_id=org_id, booking_id=booking_id)
    if booking.status == BookingStatus.CANCELLED:
        return _changed(booking, False)
    if booking.status not in UPCOMING_BOOKINGS:
        raise BookingClosed(booking.status)
    save_booking(
        session,
        booking,
        status=BookingStatus.CANCELLED.value,
        cancelled_at=now,
        cancel_reason=reason,
        updated_at=now,
    )
    _note(session, booking, "Cancelled" + (f": {reason}" if reason else ""), reason=reason)
    return _changed(booking, True)


_EVENT_WORDS = {
    VisitEvent.ON_MY_WAY: "On the way",
    VisitEvent.ARRIVED: "Arrived",
    VisitEvent.COMPLETED: "Completed",
    VisitEvent.NO_SHOW: "Marked a no-show",
}


def record_visit_event(
    session: Session,
    *,
    org_id: str,
    booking_id: str,
    kind: VisitEvent,
    at: datetime | None,
    now: datetime,
) -> BookingChanged:
    """The provider (or a field app) reports the visit: on the way, arrived, completed, or a
    no-show. The first report of each counts; ``BookingClosed`` for a cancelled visit, or one
    that contradicts an earlier report (completed after a no-show, or the reverse);
    ``ValueError`` for a time in the future."""
    at = at or now
    if at > now + EVENT_CLOCK_SKEW:
        raise ValueError("at is in the future")
    booking = _locked(session, org_id=org_id, booking_id=booking_id)
    status = BookingStatus(booking.status)
    if status == BookingStatus.CANCELLED:
        raise BookingClosed(status)
    if (status == BookingStatus.NO_SHOW and kind != VisitEvent.NO_SHOW) or (
        status == BookingStatus.COMPLETED and kind == VisitEvent.NO_SHOW
    ):
        raise BookingClosed(status, f"The visit was already marked {status.replace('_', ' ')}.")
    changes: dict[str, Any] = {}
    if kind == VisitEvent.ON_MY_WAY and booking.on_my_way_at is None:
        changes = {"on_my_way_at": at}
    elif kind == VisitEvent.ARRIVED and booking.arrived_at is None:
        changes = {"arrived_at": at}
    elif kind == VisitEvent.COMPLETED and status != BookingStatus.COMPLETED:
        changes = {"status": BookingStatus.COMPLETED.value, "completed_at": at}
    elif kind == VisitEvent.NO_SHOW and status != BookingStatus.NO_SHOW:
        changes = {"status": BookingStatus.NO_SHOW.value, "no_show_at": at}
    if not changes:
        return _changed(booking, False)
    save_booking(session, booking, **changes, updated_at=now)
    lateness = ""
    if kind == VisitEvent.ARRIVED:
        late = int((at - booking.starts_at).total_seconds() // 60)
        lateness = f" ({late} min late)" if late > 0 else " (on time)"
    _note(session, booking, f"{_EVENT_WORDS[kind]}{lateness}", event=kind.value, at=at.isoformat())
    return _changed(booking, True)


@dataclass(frozen=True, kw_only=True)
class BookingReply:
    """A customer's message that answered a visit's text."""

    booking_id: str
    workflow_id: str
    #: ``confirm``, ``reschedule`` or ``rating``.
    kind: str
    #: The item a person must look at (an R, a low rating), if one opened.
    escalation: Escalation | None = None


def booking_reply(
    session: Session, *, org: Org, contact_id: str, body: str, now: datetime
) -> BookingReply | None:
    """What a customer's message means for their visit, recorded; ``None``: nothing (an
    ordinary message, for the lead's conversation).

    A 1-5 reply to a rating request within ``RATING_WINDOW`` is the rating (2 or less opens
    an escalation); C / YES confirms the next visit ahead and R asks to move it (an
    attention item), when the org asks for replies (``appointments.confirm_by_reply``).
    Called with the contact locked (an inbound message was just recorded on its thread).
    """
    rated = awaiting_rating(
        session, org_id=org.id, contact_id=contact_id, since=now - RATING_WINDOW
    )
    rating = rating_of(body) if rated is not None else None
    if rated is not None and rating is not None:
        booking = _locked(session, org_id=org.id, booking_id=rated.id)
        save_booking(session, booking, rating=rating, rated_at=now, updated_at=now)
        _note(session, booking, f"Rated {rating}/5 by the customer", rating=rating)
        escalation = None
        if rating <= LOW_RATING:
            escalation = _escalate(
                session,
                booking,
                reason=EscalationReason.LOW_RATING,
                priority=Priority.HIGH,
                summary=f"Rated {rating}/5 after the {booking.service or 'visit'}",
            )
        return BookingReply(
            booking_id=booking.id,
            workflow_id=booking.workflow_id,
            kind="rating",
            escalation=escalation,
        )
    if not org_settings(org).appointments.confirm_by_reply:
        return None
    answer = appointment_reply(body)
    upcoming = upcoming_booking(session, org_id=org.id, contact_id=contact_id, after=now)
    if answer is None or upcoming is None:
        return None
    booking = _locked(session, org_id=org.id, booking_id=upcoming.id)
    if answer == AppointmentReply.CONFIRM:
        if booking.status == BookingStatus.SCHEDULED:
            save_booking(
                session,
                booking,
                status=BookingStatus.CONFIRMED.value,
                confirmed_at=now,
                updated_at=now,
            )
            _note(session, booking, "Confirmed by the customer")
        return BookingReply(booking_id=booking.id, workflow_id=booking.workflow_id, kind="confirm")
    save_booking(session, booking, reschedule_requested_at=now, updated_at=now)
    _note(session, booking, "The customer asked to reschedule")
    escalation = _escalate(
        session,
        booking,
        reason=EscalationReason.RESCHEDULE_REQUEST,
        priority=Priority.MEDIUM,
        summary=f"Asked to move the {booking.service or 'visit'}",
    )
    return BookingReply(
        booking_id=booking.id,
        workflow_id=booking.workflow_id,
        kind="reschedule",
        escalation=escalation,
    )


def _escalate(
    session: Session,
    booking: Booking,
    *,
    reason: EscalationReason,
    priority: Priority,
    summary: str,
) -> Escalation | None:
    thread_id = thread_of_contact(session, contact_id=booking.contact_id)
    if thread_id is None:
        return None
    row, _ = escalate_thread(
        session,
        org_id=booking.org_id,
        thread_id=thread_id,
        reason=reason,
        priority=priority,
        summary=summary,
    )
    return row


def note_complaint(session: Session, *, org_id: str, contact_id: str, now: datetime) -> None:
    """A complaint from a customer whose visit was completed within ``COMPLAINT_WINDOW``
    counts against that visit (and its provider)."""
    recent = recently_completed(
        session, org_id=org_id, contact_id=contact_id, since=now - COMPLAINT_WINDOW
    )
    if recent is None or recent.complained:
        return
    booking = _locked(session, org_id=org_id, booking_id=recent.id)
    save_booking(session, booking, complained=True, updated_at=now)
    _note(session, booking, "The customer complained about the visit")


def _plan(
    session: Session, *, org: Org, booking: Booking, contact: Contact, now: datetime
) -> list[dict[str, Any]]:
    settings = org_settings(org)
    lead = session.get(Lead, booking.lead_id)
    who = recipient_of(session, lead=lead, contact=contact, settings=settings)
    zone = ZoneInfo(who.timezone)
    channel = transactional_channel(session, org_id=org.id, contact_id=contact.id)
    planned = plan_reminders(
        starts_at=booking.starts_at,
        offsets=list(settings.appointments.reminders),
        now=now,
        zone=zone,
        window=window_for(channel, settings, who.region) if channel else None,
        weekdays_only=settings.quiet_hours.weekdays_only,
    )
    return [
        {
            "version": booking.version,
            "offset_s": int(reminder.offset.total_seconds()),
            "at": reminder.at.isoformat() if reminder.at else None,
            "note": reminder.note
            if channel is not None
            else "not sent: no channel the customer allows",
            "status": "pending" if reminder.at is not None and channel else "skipped",
        }
        for reminder in planned
    ]


def appointment_state(
    session: Session, *, org_id: str, booking_id: str, now: datetime
) -> AppointmentState:
    """The booking as its workflow acts on it. The first read of a new time (version) plans
    its reminders at ``now`` and notes them on the booking's timeline; later reads keep that
    plan (a reminder already due is not re-planned as missed)."""
    booking = _locked(session, org_id=org_id, booking_id=booking_id)
    if booking.status in UPCOMING_BOOKINGS and not any(
        entry.get("version") == booking.version for entry in booking.reminders
    ):
        org = get_org(session, org_id=org_id)
        contact = session.get(Contact, booking.contact_id)
        assert contact is not None
        lead = session.get(Lead, booking.lead_id)
        zone = _zone(session, org=org, lead=lead, contact=contact)
        plan = _plan(session, org=org, booking=booking, contact=contact, now=now)
        kept = [entry for entry in booking.reminders if entry.get("status") == "sent"]
        save_booking(session, booking, reminders=[*kept, *plan])
        _note(
            session,
            booking,
            "Reminders: " + "; ".join(_reminder_words(entry, zone) for entry in plan)
            if plan
            else "No reminders set",
            version=booking.version,
            reminders=plan,
        )
    org_row = get_org(session, org_id=org_id)
    settings = org_settings(org_row)
    return AppointmentState(
        version=booking.version,
        status=booking.status,
        starts_at=booking.starts_at,
        reminders=[
            PlannedReminderState(
                offset_s=int(entry["offset_s"]),
                at=datetime.fromisoformat(entry["at"])
                if entry["at"] and entry["status"] == "pending"
                else None,
                note=str(entry.get("note") or ""),
            )
            for entry in booking.reminders
            if entry.get("version") == booking.version
        ],
        confirmed_at=booking.confirmed_at,
        reschedule_requested_at=booking.reschedule_requested_at,
        on_my_way_at=booking.on_my_way_at,
        completed_at=booking.completed_at,
        rating_request_after_s=int(settings.appointments.rating_request_after.total_seconds()),
        rating_requested_at=booking.rating_requested_at,
        rated_at=booking.rated_at,
        rating=booking.rating,
    )


def _reminder_words(entry: dict[str, Any], zone: ZoneInfo) -> str:
    offset = timedelta(seconds=int(entry["offset_s"]))
    ahead = duration_words(offset)
    if entry["at"] is None or entry["status"] != "pending":
        return f"{ahead} before: {entry['note']}"
    at = datetime.fromisoformat(entry["at"]).astimezone(zone)
    moved = f" ({entry['note']})" if entry["note"] else ""
    return f"{ahead} before at {at:%a %d %b %H:%M}{moved}"


_SENT_WORDS = {
    AppointmentText.CONFIRMATION: "Confirmation sent",
    AppointmentText.MOVED: "The customer was told of the new time",
    AppointmentText.CANCELLED: "The customer was told of the cancellation",
    AppointmentText.CONFIRMED: "Thanked the customer for confirming",
    AppointmentText.RESCHEDULE_ASKED: "Told the customer someone will find a new time",
    AppointmentText.ON_MY_WAY: "Told the customer the provider is on the way",
    AppointmentText.RATING_REQUEST: "Asked the customer to rate the visit",
    AppointmentText.RATED: "Thanked the customer for the rating",
}


_WAITING_WORDS = {
    AppointmentText.CONFIRMATION: "The confirmation",
    AppointmentText.REMINDER: "A reminder",
    AppointmentText.MOVED: "The notice of the new time",
    AppointmentText.CANCELLED: "The notice of the cancellation",
    AppointmentText.CONFIRMED: "The thanks for confirming",
    AppointmentText.RESCHEDULE_ASKED: "The note that someone will find a new time",
    AppointmentText.ON_MY_WAY: "The on-my-way text",
    AppointmentText.RATING_REQUEST: "The rating request",
    AppointmentText.RATED: "The thanks for the rating",
}


def note_held(
    session: Session,
    *,
    org_id: str,
    booking_id: str,
    kind: AppointmentText,
    offset_s: int | None,
    reason: str,
) -> None:
    """Note on the booking's timeline that one of its messages waits (the quiet hours held
    it back at its claim, ``reason`` saying until when)."""
    booking = get_booking(session, org_id=org_id, booking_id=booking_id)
    if booking is None:
        raise NotFound(booking_id)
    what = _WAITING_WORDS[kind]
    if kind == AppointmentText.REMINDER and offset_s:
        what = f"The reminder {duration_words(timedelta(seconds=offset_s))} before"
    _note(session, booking, f"{what} waits: {reason}", message=kind.value, held=reason)


#: Messages about the visit's time as it was set (its version): none goes once it moves.
_OF_A_TIME = frozenset(
    {
        AppointmentText.REMINDER,
        AppointmentText.MOVED,
        AppointmentText.CONFIRMED,
        AppointmentText.RESCHEDULE_ASKED,
        AppointmentText.ON_MY_WAY,
    }
)


def _stale(booking: Booking, kind: AppointmentText, *, version: int, now: datetime) -> str | None:
    """Why the message no longer fits the booking as it is now (``None``: it does)."""
    upcoming = booking.status in UPCOMING_BOOKINGS
    if kind in _OF_A_TIME:
        if not upcoming:
            return f"the visit is {booking.status.replace('_', ' ')}"
        if version != booking.version:
            return "the visit has moved since"
        if kind == AppointmentText.REMINDER and now >= booking.starts_at:
            return "the visit has started"
    if kind == AppointmentText.CONFIRMATION and not upcoming:
        return f"the visit is {booking.status.replace('_', ' ')}"
    if kind == AppointmentText.CANCELLED and booking.status != BookingStatus.CANCELLED:
        return "the visit is not cancelled"
    if kind == AppointmentText.RATING_REQUEST and (
        booking.status != BookingStatus.COMPLETED or booking.rating is not None
    ):
        return "the visit is not awaiting a rating"
    return None


def claim_appointment_message(
    session: Session,
    *,
    org_id: str,
    booking_id: str,
    kind: AppointmentText,
    version: int,
    offset_s: int | None,
    idempotency_key: str,
    now: datetime,
) -> TransactionalClaim:
    """Claim one appointment message (transactional: consent and quiet hours, not the touch
    budget), checked against the booking as it is now: a reminder of a moved or cancelled
    time is skipped, not sent. A message already claimed under the key is that message.
    ``Deferred`` while quiet hours hold it back."""
    booking = _locked(session, org_id=org_id, booking_id=booking_id)
    offset = timedelta(seconds=offset_s) if offset_s else None

    def words(zone: ZoneInfo) -> str:
        provider = (
            get_provider(session, org_id=org_id, provider_id=booking.provider_id)
            if booking.provider_id
            else None
        )
        org = get_org(session, org_id=org_id)
        return appointment_text(
            kind,
            starts_at=booking.starts_at,
            zone=zone,
            service=booking.service,
            provider=provider.name if provider else None,
            confirm_by_reply=org_settings(org).appointments.confirm_by_reply
            and booking.status == BookingStatus.SCHEDULED,
            offset=offset,
            rating=booking.rating,
        )

    claimed = claim_transactional(
        session,
        org_id=org_id,
        lead_id=booking.lead_id,
        contact_id=booking.contact_id,
        idempotency_key=idempotency_key,
        template=f"appointment_{kind.value}",
        why_not=_stale(booking, kind, version=version, now=now),
        words=words,
        now=now,
    )
    if claimed.skipped is not None and kind == AppointmentText.REMINDER and offset:
        _note(
            session,
            booking,
            f"Reminder ({duration_words(offset)} before) not sent: {claimed.skipped}",
            message=kind.value,
            skipped=claimed.skipped,
        )
    if claimed.new and claimed.channel is not None:
        _claimed(session, booking, kind, offset=offset, channel=claimed.channel, now=now)
    return claimed


def _claimed(
    session: Session,
    booking: Booking,
    kind: AppointmentText,
    *,
    offset: timedelta | None,
    channel: Channel,
    now: datetime,
) -> None:
    """Note a new appointment message on the booking (and mark a reminder sent)."""
    if kind == AppointmentText.REMINDER and offset is not None:
        seconds = int(offset.total_seconds())
        save_booking(
            session,
            booking,
            reminders=[
                {**entry, "status": "sent", "sent_at": now.isoformat()}
                if entry.get("version") == booking.version and entry["offset_s"] == seconds
                else entry
                for entry in booking.reminders
            ],
        )
        words = f"Reminder sent by {channel.value} ({duration_words(offset)} before)"
    else:
        words = f"{_SENT_WORDS[kind]} by {channel.value}"
    if kind == AppointmentText.RATING_REQUEST:
        save_booking(session, booking, rating_requested_at=now)
    _note(session, booking, words, message=kind.value, channel=channel.value)
