"""Bookings as the API and pages show them: a window of visits, and one with its timeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from models.errors import NotFound
from models.schemas.bookings import (
    BookingDetail,
    BookingList,
    BookingOut,
    BookingTimelineItem,
    ReminderOut,
)
from models.store.bookings import (
    booking_timeline,
    bookings_of_contact,
    get_booking,
    list_bookings,
)
from models.store.leads import get_lead
from models.tables import Booking, Contact, Provider
from models.values import BookingStatus

#: The most bookings one list answers (narrow the window for more).
MAX_BOOKINGS = 500


def _names(session: Session, bookings: list[Booking]) -> dict[str, str]:
    ids = {booking.provider_id for booking in bookings if booking.provider_id}
    if not ids:
        return {}
    rows = session.exec(select(Provider.id, Provider.name).where(col(Provider.id).in_(ids)))
    return dict(rows.all())


def _out(booking: Booking, names: dict[str, str]) -> dict[str, object]:
    current = [entry for entry in booking.reminders if entry.get("version") == booking.version]
    return {
        "booking_id": booking.id,
        "lead_id": booking.lead_id,
        "workflow_id": booking.workflow_id,
        "provider_id": booking.provider_id,
        "provider_name": names.get(booking.provider_id or ""),
        "starts_at": booking.starts_at,
        "ends_at": booking.ends_at,
        "service": booking.service,
        "address": booking.address,
        "status": BookingStatus(booking.status),
        "version": booking.version,
        "confirmed_at": booking.confirmed_at,
        "reschedule_requested_at": booking.reschedule_requested_at,
        "on_my_way_at": booking.on_my_way_at,
        "arrived_at": booking.arrived_at,
        "completed_at": booking.completed_at,
        "no_show_at": booking.no_show_at,
        "cancelled_at": booking.cancelled_at,
        "cancel_reason": booking.cancel_reason,
        "rating": booking.rating,
        "complained": booking.complained,
        "reminders": [
            ReminderOut(
                offset_s=int(entry["offset_s"]),
                at=datetime.fromisoformat(entry["at"]) if entry.get("at") else None,
                status=str(entry.get("status") or "pending"),
                note=str(entry.get("note") or ""),
            )
            for entry in sorted(current, key=lambda entry: -int(entry["offset_s"]))
        ],
        "created_at": booking.created_at,
    }


def booking_list(
    session: Session,
    *,
    org_id: str,
    starts_from: datetime | None,
    starts_to: datetime | None,
    provider_id: str | None,
    status: BookingStatus | None,
    limit: int = MAX_BOOKINGS,
) -> BookingList:
    """The org's visits starting in ``[starts_from, starts_to)``, soonest first."""
    bookings = list_bookings(
        session,
        org_id=org_id,
        starts_from=starts_from,
        starts_to=starts_to,
        provider_id=provider_id,
        status=status,
        limit=min(limit, MAX_BOOKINGS),
    )
    names = _names(session, bookings)
    return BookingList(items=[BookingOut.model_validate(_out(b, names)) for b in bookings])


def booking_detail(session: Session, *, org_id: str, booking_id: str) -> BookingDetail:
    """The org's booking with its timeline; ``NotFound`` for another org's or none."""
    booking = get_booking(session, org_id=org_id, booking_id=booking_id)
    if booking is None:
        raise NotFound(booking_id)
    return BookingDetail.model_validate(
        {
            **_out(booking, _names(session, [booking])),
            "note": booking.note,
            "timeline": [
                BookingTimelineItem(at=event.at, summary=event.summary, data=event.data)
                for event in booking_timeline(session, booking_id=booking.id)
            ],
        }
    )


def lead_bookings(session: Session, *, org_id: str, lead_id: str) -> BookingList:
    """The lead's visits, the latest first (read along its contact's bookings);
    ``NotFound`` for another org's lead or none."""
    lead = get_lead(session, org_id=org_id, lead_id=lead_id)
    bookings = [
        booking
        for booking in bookings_of_contact(session, org_id=org_id, contact_id=lead.contact_id)
        if booking.lead_id == lead_id
    ][:MAX_BOOKINGS]
    names = _names(session, bookings)
    return BookingList(items=[BookingOut.model_validate(_out(b, names)) for b in bookings])


@dataclass(frozen=True, kw_only=True)
class BookingView:
    """A booking as its page shows it: the booking with its timeline, and whose it is."""

    booking: BookingDetail
    contact_id: str
    #: The customer's name, if known.
    customer: str | None


def booking_view(session: Session, *, org_id: str, booking_id: str) -> BookingView:
    """The org's booking, its timeline and its customer; ``NotFound`` for another org's."""
    detail = booking_detail(session, org_id=org_id, booking_id=booking_id)
    booking = get_booking(session, org_id=org_id, booking_id=booking_id)
    assert booking is not None
    contact = session.get(Contact, booking.contact_id)
    return BookingView(
        booking=detail,
        contact_id=booking.contact_id,
        customer=contact.name if contact is not None else None,
    )
