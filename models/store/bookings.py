"""Bookings: a lead's visits, and each booking's own timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from models.database import lock
from models.tables import Booking, Contact, TimelineEvent
from models.values import UPCOMING_BOOKINGS, BookingStatus


def get_booking(session: Session, *, org_id: str, booking_id: str) -> Booking | None:
    """The org's booking ``booking_id`` (``None``: none, or another org's)."""
    booking = session.get(Booking, booking_id)
    return booking if booking is not None and booking.org_id == org_id else None


def lock_booking(session: Session, *, org_id: str, booking_id: str) -> Booking | None:
    """The org's booking, locked after its contact (a booking is always locked after the
    contact it belongs to: the services that write both take the contact first)."""
    booking = get_booking(session, org_id=org_id, booking_id=booking_id)
    if booking is None:
        return None
    lock(session, Contact, booking.contact_id)
    return lock(session, Booking, booking.id)


def booking_of_receipt(session: Session, *, receipt_id: str) -> Booking | None:
    """The booking an intake receipt (``booking:{event_id}``) made."""
    return session.exec(select(Booking).where(Booking.receipt_id == receipt_id)).first()


def bookings_of_contact(session: Session, *, org_id: str, contact_id: str) -> list[Booking]:
    """The contact's bookings, latest visit first."""
    return list(
        session.exec(
            select(Booking)
            .where(Booking.org_id == org_id, Booking.contact_id == contact_id)
            .order_by(col(Booking.starts_at).desc())
        )
    )


def upcoming_booking(
    session: Session, *, org_id: str, contact_id: str, after: datetime
) -> Booking | None:
    """The contact's next visit (scheduled or confirmed) starting after ``after``."""
    return session.exec(
        select(Booking)
        .where(
            Booking.org_id == org_id,
            Booking.contact_id == contact_id,
            col(Booking.starts_at) > after,
            col(Booking.status).in_([status.value for status in UPCOMING_BOOKINGS]),
        )
        .order_by(col(Booking.starts_at))
    ).first()


def awaiting_rating(
    session: Session, *, org_id: str, contact_id: str, since: datetime
) -> Booking | None:
    """The contact's completed visit whose rating request went after ``since`` and that has
    no rating yet (the latest)."""
    return session.exec(
        select(Booking)
        .where(
            Booking.org_id == org_id,
            Booking.contact_id == contact_id,
            Booking.status == BookingStatus.COMPLETED.value,
            col(Booking.rating_requested_at) > since,
            col(Booking.rating).is_(None),
        )
        .order_by(col(Booking.rating_requested_at).desc())
    ).first()


def recently_completed(
    session: Session, *, org_id: str, contact_id: str, since: datetime
) -> Booking | None:
    """The contact's latest visit completed after ``since`` (what a complaint is about)."""
    return session.exec(
        select(Booking)
        .where(
            Booking.org_id == org_id,
            Booking.contact_id == contact_id,
            Booking.status == BookingStatus.COMPLETED.value,
            col(Booking.completed_at) > since,
        )
        .order_by(col(Booking.completed_at).desc())
    ).first()


def list_bookings(
    session: Session,
    *,
    org_id: str,
    starts_from: datetime | None,
    starts_to: datetime | None,
    provider_id: str | None,
    status: BookingStatus | None,
    limit: int,
) -> list[Booking]:
    """The org's bookings whose visit starts in ``[starts_from, starts_to)``, soonest first."""
    query = select(Booking).where(Booking.org_id == org_id)
    if starts_from is not None:
        query = query.where(col(Booking.starts_at) >= starts_from)
    if starts_to is not None:
        query = query.where(col(Booking.starts_at) < starts_to)
    if provider_id is not None:
        query = query.where(Booking.provider_id == provider_id)
    if status is not None:
        query = query.where(Booking.status == status.value)
    return list(session.exec(query.order_by(col(Booking.starts_at), col(Booking.id)).limit(limit)))


def booking_timeline(session: Session, *, booking_id: str) -> list[TimelineEvent]:
    """The booking's own timeline, oldest first."""
    return list(
        session.exec(
            select(TimelineEvent)
            .where(TimelineEvent.booking_id == booking_id)
            .order_by(col(TimelineEvent.at), col(TimelineEvent.id))
        )
    )


def save_booking(session: Session, booking: Booking, **changes: Any) -> Booking:
    """Write ``changes`` to the (locked) booking."""
    for name, value in changes.items():
        setattr(booking, name, value)
    session.add(booking)
    session.flush()
    return booking
