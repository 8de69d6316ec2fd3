"""Visits: booking one from the Lead page, and the Booking page (its status, time, provider,
the reminders of its current time, Move, Cancel, the provider's news, its timeline).

Times are the org's clock: a ``datetime-local`` value is read in the org's timezone and every
time is shown there. Each action is the same use case the JSON API runs (``api.actions``):
one transaction, then the visit's workflow told. A form posts, then the browser goes to the
Booking page (a reload doesn't post again); a double submit of the booking form is one
booking, by the ``event_id`` its render carried. Another org's booking is 404 everywhere.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from api import actions
from api.deps import DatabaseDep, IdParam, SettingsDep, TemporalConnectionDep
from api.errors import ApiError
from api.sessions import OperatorSessionDep
from api.ui.leads import BOOKING_STATUS_NAMES, render_lead
from api.ui.render import local_time, page
from models.errors import BookingClosed, EventIdTaken, LeadClosed, NotFound
from models.reads.bookings import BookingView, booking_view
from models.rules.orgs import org_settings
from models.services.bookings import BookingChanged
from models.services.sign_in import Current
from models.tables import Org, utcnow
from models.values import UPCOMING_BOOKINGS, VisitEvent

router = APIRouter(prefix="/app", include_in_schema=False)

#: What the page says after an action (``?done=``): fixed words, never the query's own.
DONE = {
    "booked": "Booked. The customer gets a confirmation now and reminders before the visit.",
    "moved": "Moved. The customer is told of the new time once; the reminders follow it.",
    "unchanged": "Nothing changed: that is how the visit already stands.",
    "cancelled": "Cancelled. The customer is told; no more reminders go.",
    "on_my_way": "Recorded: on the way. The customer is told.",
    "arrived": "Recorded: arrived.",
    "completed": "Recorded: completed. The customer will be asked to rate the visit.",
    "no_show": "Recorded: no-show.",
}
#: The provider's news, as its buttons say it.
EVENT_NAMES = {
    VisitEvent.ON_MY_WAY: "On my way",
    VisitEvent.ARRIVED: "Arrived",
    VisitEvent.COMPLETED: "Completed",
    VisitEvent.NO_SHOW: "No-show",
}
REMINDER_STATUS_NAMES = {"pending": "Pending", "sent": "Sent", "skipped": "Skipped"}
#: ``datetime-local`` without seconds, as the browser sends and shows it.
LOCAL_INPUT = "%Y-%m-%dT%H:%M"
#: The farthest ahead a visit may be booked from a page (a typo of the year, not a plan).
FURTHEST = timedelta(days=3 * 366)


def ahead(seconds: int) -> str:
    """How long before the visit a reminder goes: ``1 day``, ``2 h``, ``30 min``."""
    for size, unit in ((86400, "day"), (3600, "h"), (60, "min")):
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if unit == 'day' and count != 1 else ''}"
    return f"{seconds} s"


def _zone(org: Org) -> ZoneInfo:
    return ZoneInfo(org_settings(org).timezone)


class BadTime(ValueError):
    """A date-time the form can't take, in words for the person who typed it."""


def read_local(value: str, zone: ZoneInfo, *, now: datetime) -> datetime:
    """A ``datetime-local`` value (``2026-07-14T09:00``) as the moment it names in ``zone``;
    ``BadTime`` for one that isn't a date-time, has passed, or is years away."""
    try:
        naive = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadTime("Give a date and time, like 2026-07-14 09:00.") from None
    if naive.tzinfo is not None:
        raise BadTime("Give the date and time without a timezone.")
    moment = naive.replace(tzinfo=zone)
    if moment <= now:
        raise BadTime(f"{local_time(moment, zone)} has passed; choose a time ahead.")
    if moment > now + FURTHEST:
        raise BadTime(f"{local_time(moment, zone)} is more than three years away.")
    return moment


def _blank(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _booking_url(booking_id: str, done: str | None = None) -> str:
    url = f"/app/bookings/{quote(booking_id, safe='')}"
    return f"{url}?done={done}" if done else url


async def _view(me: Current, database: DatabaseDep, booking_id: str) -> BookingView:
    try:
        return await database.read(booking_view, org_id=me.org.id, booking_id=booking_id)
    except NotFound:
        raise ApiError(404, "No such booking.") from None


def _context(me: Current, view: BookingView) -> dict[str, Any]:
    booking = view.booking
    zone = _zone(me.org)
    return {
        "view": view,
        "booking": booking,
        "zone": zone,
        "now": utcnow(),
        "upcoming": booking.status in UPCOMING_BOOKINGS,
        "status_names": BOOKING_STATUS_NAMES,
        "event_names": EVENT_NAMES,
        "reminder_names": REMINDER_STATUS_NAMES,
        "ahead": ahead,
        "reported": {
            VisitEvent.ON_MY_WAY: booking.on_my_way_at,
            VisitEvent.ARRIVED: booking.arrived_at,
            VisitEvent.COMPLETED: booking.completed_at,
            VisitEvent.NO_SHOW: booking.no_show_at,
        },
        "starts_local": booking.starts_at.astimezone(zone).strftime(LOCAL_INPUT),
    }


async def _render(
    request: Request,
    me: Current,
    database: DatabaseDep,
    booking_id: str,
    *,
    block: str | None = None,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    view = await _view(me, database, booking_id)
    return page(
        request,
        "booking.html",
        me=me,
        block=block,
        status_code=status_code,
        title=f"Visit: {view.customer or 'unknown customer'}",
        section="inbox",
        **_context(me, view),
        **extra,
    )


def _go(request: Request, target: str) -> Response:
    if request.headers.get("hx-request") == "true":
        return Response(status_code=200, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


@router.post("/leads/{lead_id}/bookings")
async def book(
    request: Request,
    lead_id: IdParam,
    me: OperatorSessionDep,
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
    settings: SettingsDep,
    event_id: Annotated[str, Form(min_length=1, max_length=64)],
    starts_at: Annotated[str, Form(max_length=40)],
    service: Annotated[str | None, Form(max_length=200)] = None,
    provider_id: Annotated[str | None, Form(max_length=40)] = None,
    address: Annotated[str | None, Form(max_length=500)] = None,
    note: Annotated[str | None, Form(max_length=1000)] = None,
) -> Response:
    """Book a visit for the lead, then go to its page. What was wrong: the Lead page again
    with the form as sent (the same ``event_id``) and the reason."""
    sent = {
        "event_id": event_id,
        "starts_at": starts_at,
        "service": service or "",
        "provider_id": provider_id or "",
        "address": address or "",
        "note": note or "",
    }

    async def again(status_code: int, error: str) -> Response:
        return await render_lead(
            request,
            me,
            lead_id,
            database,
            temporal,
            settings,
            status_code=status_code,
            form=sent,
            book_error=error,
        )

    try:
        start = read_local(starts_at, _zone(me.org), now=utcnow())
    except BadTime as bad:
        return await again(422, str(bad))
    chosen = _blank(provider_id)
    try:
        made = await actions.book(
            org_id=me.org.id,
            lead_id=lead_id,
            event_id=f"page:{event_id.strip()}",
            starts_at=start,
            ends_at=None,
            provider_id=chosen,
            service=_blank(service),
            address=_blank(address),
            note=_blank(note),
            database=database,
            temporal=temporal,
        )
    except NotFound as missing:
        if chosen is not None and str(missing) == chosen:
            return await again(422, "That provider is no longer here; choose another.")
        raise ApiError(404, "No such lead.") from None
    except LeadClosed as closed:
        return await again(409, f"The lead is {closed.stage.replace('_', ' ')}: it can't book.")
    except EventIdTaken:
        return await again(409, "This form was already used for another lead; try again.")
    except ApiError as error:
        if error.status != 503:
            raise
        return await again(503, f"{error.message} Press Book again in a moment.")
    return _go(request, _booking_url(made.booking_id, "booked"))


@router.get("/bookings/{booking_id}")
async def booking_page(
    request: Request,
    booking_id: IdParam,
    me: OperatorSessionDep,
    database: DatabaseDep,
    done: Annotated[str | None, Query(max_length=20)] = None,
    confirm: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """One visit (``done``: what the last action did; ``confirm=cancel``: the cancel confirm
    shown open, for a page without script)."""
    return await _render(
        request,
        me,
        database,
        booking_id,
        notice=DONE.get(done or ""),
        confirm=confirm,
    )


@router.get("/bookings/{booking_id}/view")
async def booking_block(
    request: Request, booking_id: IdParam, me: OperatorSessionDep, database: DatabaseDep
) -> Response:
    """The page's live block alone (a live region re-fetches it)."""
    return await _render(request, me, database, booking_id, block="booking_live")


async def _changed(
    request: Request,
    me: Current,
    database: DatabaseDep,
    booking_id: str,
    change: Awaitable[BookingChanged],
    done: str,
) -> Response:
    """Run ``change`` (an ``api.actions`` call), then go to the page saying what it did; what
    went wrong: the page with the reason."""
    try:
        changed = await change
    except NotFound:
        raise ApiError(404, "No such booking.") from None
    except BookingClosed as closed:
        return await _render(
            request, me, database, booking_id, status_code=409, error=closed.detail
        )
    except ValueError as bad:
        return await _render(request, me, database, booking_id, status_code=422, error=str(bad))
    except ApiError as error:
        if error.status != 503:
            raise
        return await _render(
            request, me, database, booking_id, status_code=503, error=error.message
        )
    return _go(request, _booking_url(booking_id, done if changed.changed else "unchanged"))


@router.post("/bookings/{booking_id}/move")
async def move(
    request: Request,
    booking_id: IdParam,
    me: OperatorSessionDep,
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
    starts_at: Annotated[str, Form(max_length=40)],
) -> Response:
    """Move the visit to another time (its length kept, if it has an end)."""
    view = await _view(me, database, booking_id)
    try:
        start = read_local(starts_at, _zone(me.org), now=utcnow())
    except BadTime as bad:
        return await _render(request, me, database, booking_id, status_code=422, error=str(bad))
    current = view.booking
    end = current.ends_at + (start - current.starts_at) if current.ends_at else None
    change = actions.move_visit(
        org_id=me.org.id,
        booking_id=booking_id,
        starts_at=start,
        ends_at=end,
        database=database,
        temporal=temporal,
    )
    return await _changed(request, me, database, booking_id, change, "moved")


@router.post("/bookings/{booking_id}/cancel")
async def cancel(
    request: Request,
    booking_id: IdParam,
    me: OperatorSessionDep,
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
    reason: Annotated[str | None, Form(max_length=500)] = None,
) -> Response:
    """Cancel the visit (after the confirm)."""
    change = actions.cancel_visit(
        org_id=me.org.id,
        booking_id=booking_id,
        reason=_blank(reason),
        database=database,
        temporal=temporal,
    )
    return await _changed(request, me, database, booking_id, change, "cancelled")


@router.post("/bookings/{booking_id}/events")
async def visit_event(
    request: Request,
    booking_id: IdParam,
    me: OperatorSessionDep,
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
    kind: Annotated[VisitEvent, Form()],
) -> Response:
    """The provider's news, now: on the way, arrived, completed or a no-show."""
    change = actions.report_visit(
        org_id=me.org.id,
        booking_id=booking_id,
        kind=kind,
        at=None,
        database=database,
        temporal=temporal,
    )
    return await _changed(request, me, database, booking_id, change, kind.value)
