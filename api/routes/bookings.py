"""Bookings: move, cancel and report a visit, and read them (API.md "Appointments and the
people who do the work"). A booking is made on its lead: ``POST /v1/leads/{id}/bookings``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.actions import cancel_visit, move_visit, report_visit
from api.deps import DatabaseDep, IdParam, OrgDep, TemporalConnectionDep, WindowDep
from api.errors import ApiError, invalid
from api.openapi import ORG_KEY, errors
from api.sessions import ActorDep
from models.errors import BookingClosed, NotFound
from models.reads.bookings import MAX_BOOKINGS, booking_detail, booking_list
from models.schemas.bookings import (
    BookingCancel,
    BookingChangeOut,
    BookingDetail,
    BookingEventIn,
    BookingList,
    BookingPatch,
)
from models.services.bookings import BookingChanged
from models.tables import utcnow
from models.values import BookingStatus

router = APIRouter(prefix="/v1/bookings", tags=["bookings"], responses=errors(*ORG_KEY))


def _out(changed: BookingChanged) -> BookingChangeOut:
    return BookingChangeOut(
        booking_id=changed.booking_id,
        status=BookingStatus(changed.status),
        version=changed.version,
        changed=changed.changed,
    )


def _missing(booking_id: str, error: NotFound, provider_id: str | None = None) -> ApiError:
    if provider_id is not None and str(error) == provider_id:
        return ApiError(404, f"No provider {provider_id!r} in this org.")
    return ApiError(404, f"No booking {booking_id!r} in this org.")


def _closed(error: BookingClosed) -> ApiError:
    return ApiError(409, error.detail, code="booking_closed")


@router.patch("/{booking_id}", responses=errors(404, 409, 413, 422, 503))
async def reschedule(
    booking_id: IdParam,
    body: BookingPatch,
    actor: ActorDep,
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
) -> BookingChangeOut:
    """Move the visit (``starts_at``, ``ends_at``) or give it to another provider. A new
    start moves every pending reminder and the customer is told once; the same values
    again change nothing. A cancelled, completed or missed visit: 409."""
    if body.starts_at is not None and body.starts_at <= utcnow():
        raise invalid("starts_at", "is in the past")
    try:
        changed = await move_visit(
            org_id=actor.org.id,
            booking_id=booking_id,
            starts_at=body.starts_at,
            ends_at=body.ends_at,
            provider_id=body.provider_id,
            database=database,
            temporal=temporal,
        )
    except NotFound as error:
        raise _missing(booking_id, error, body.provider_id) from None
    except BookingClosed as error:
        raise _closed(error) from None
    except ValueError as error:
        raise invalid("ends_at", str(error).removeprefix("ends_at ")) from None
    return _out(changed)


@router.post("/{booking_id}/cancel", responses=errors(404, 409, 413, 422, 503))
async def cancel(
    booking_id: IdParam,
    body: BookingCancel,
    actor: ActorDep,
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
) -> BookingChangeOut:
    """Cancel the visit: no reminder goes after it, and the customer is told once (if they
    had heard of the booking). Again: nothing changes. Completed or missed: 409."""
    try:
        changed = await cancel_visit(
            org_id=actor.org.id,
            booking_id=booking_id,
            reason=body.reason,
            database=database,
            temporal=temporal,
        )
    except NotFound as error:
        raise _missing(booking_id, error) from None
    except BookingClosed as error:
        raise _closed(error) from None
    return _out(changed)


@router.post("/{booking_id}/events", status_code=202, responses=errors(404, 409, 413, 422, 503))
async def visit_event(
    booking_id: IdParam,
    body: BookingEventIn,
    actor: ActorDep,
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
) -> BookingChangeOut:
    """The provider's news (from their phone, a field app or an integration): ``on_my_way``
    texts the customer, ``arrived`` times the visit, ``completed`` leads to a rating request,
    ``no_show`` ends it. The first report of each counts; a contradicting one is 409."""
    try:
        changed = await report_visit(
            org_id=actor.org.id,
            booking_id=booking_id,
            kind=body.kind,
            at=body.at,
            database=database,
            temporal=temporal,
        )
    except NotFound as error:
        raise _missing(booking_id, error) from None
    except BookingClosed as error:
        raise _closed(error) from None
    except ValueError as error:
        raise invalid("at", str(error).removeprefix("at ")) from None
    return _out(changed)


@router.get("", responses=errors(422))
async def list_of_bookings(
    org: OrgDep,
    database: DatabaseDep,
    window: WindowDep,
    provider_id: Annotated[str | None, Query(max_length=40)] = None,
    status: BookingStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_BOOKINGS)] = 100,
) -> BookingList:
    """The org's visits starting in ``[from, to)`` (either end open), soonest first, at most
    ``limit``; by provider and status."""
    return await database.read(
        booking_list,
        org_id=org.id,
        starts_from=window.start,
        starts_to=window.end,
        provider_id=provider_id,
        status=status,
        limit=limit,
    )


@router.get("/{booking_id}", responses=errors(404, 422))
async def one_booking(booking_id: IdParam, org: OrgDep, database: DatabaseDep) -> BookingDetail:
    """The booking, its reminders and its timeline."""
    try:
        return await database.read(booking_detail, org_id=org.id, booking_id=booking_id)
    except NotFound:
        raise ApiError(404, f"No booking {booking_id!r} in this org.") from None
