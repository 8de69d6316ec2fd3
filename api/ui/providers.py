"""The Providers page (who does the visits, and who is slipping) and one provider's page.

The Providers page shows every provider's last 30 days in the org's calendar (visits,
attended, on time, average lateness, average rating, complaints) with their flags in words,
and the owner's "Add provider" form. A provider's page shows the figures of a chosen range
(``from``, ``to``: calendar days, both included, as on the Pipeline page), each flag with the
visits that raised it, and their upcoming and recent visits. Another org's provider is 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.responses import Response

from api.deps import DatabaseDep, IdParam
from api.errors import ApiError
from api.sessions import OperatorSessionDep
from api.ui.leads import BOOKING_STATUS_NAMES
from api.ui.pipeline import PRESETS, Range, RangeDep, duration, last_days, percent
from api.ui.render import page
from models.errors import NotFound, ProviderExists
from models.reads.bookings import MAX_BOOKINGS, booking_list
from models.reads.providers import (
    EARLIEST,
    ProviderFigures,
    provider_board,
    provider_of,
    provider_performance,
)
from models.rules.contacts import normalize_phone
from models.rules.orgs import org_settings
from models.schemas import PerformanceFlag, ProviderCreate, ProviderPerformance
from models.schemas.bookings import BookingOut
from models.services.providers import create_provider
from models.services.sign_in import Current
from models.tables import utcnow
from models.values import BookingStatus, OperatorRole

router = APIRouter(prefix="/app", include_in_schema=False)

#: The Providers page's window: the last 30 days, today included.
BOARD_DAYS = 30
#: How many visits each list on a provider's page shows.
UPCOMING_SHOWN = 20
RECENT_SHOWN = 50


@dataclass(frozen=True)
class Figures:
    """A provider's figures as a person reads them."""

    visits: str
    attended: str
    on_time: str
    lateness: str
    rating: str
    complaints: str


def figures(report: ProviderPerformance) -> Figures:
    """``report``'s numbers in words: ``67%``, ``12 min``, ``4.5 (12)``; ``—`` over nothing."""
    rating = (
        f"{report.average_rating:.1f} ({report.ratings})"
        if report.average_rating is not None
        else "—"
    )
    return Figures(
        visits=str(report.visits),
        attended=percent(report.attended_rate),
        on_time=percent(report.on_time_rate),
        lateness=duration(report.average_lateness_s),
        rating=rating,
        complaints=percent(report.complaint_rate),
    )


def _grace(me: Current) -> timedelta:
    return org_settings(me.org).appointments.on_time_grace


def _owner(me: Current) -> bool:
    return me.operator.role == OperatorRole.OWNER


async def _board(
    request: Request,
    me: Current,
    database: DatabaseDep,
    *,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    window = last_days(me.org, BOARD_DAYS)
    assert window.start is not None
    rows: list[ProviderFigures] = await database.read(
        provider_board,
        org_id=me.org.id,
        start=window.start,
        end=window.end,
        grace=_grace(me),
        now=utcnow(),
    )
    added = extra.pop("added", None)
    names = {row.provider.name for row in rows}
    return page(
        request,
        "providers.html",
        me=me,
        title="Providers",
        section="providers",
        status_code=status_code,
        rows=[(row.provider, row.performance, figures(row.performance)) for row in rows],
        flagged=[row for row in rows if row.performance.flags],
        window=window,
        window_query=window.query(),
        is_owner=_owner(me),
        grace=duration(_grace(me).total_seconds()),
        form=extra.pop("form", {}),
        notice=f"{added} is added." if added in names else None,
        **extra,
    )


@router.get("/providers")
async def providers_page(
    request: Request,
    me: OperatorSessionDep,
    database: DatabaseDep,
    added: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Every provider's last 30 days, their flags first; the owner's "Add provider" form
    (``added``: the provider just added, named in the notice)."""
    return await _board(request, me, database, added=added)


@router.post("/providers")
async def add_provider(
    request: Request,
    me: OperatorSessionDep,
    database: DatabaseDep,
    name: Annotated[str, Form(max_length=200)],
    phone: Annotated[str | None, Form(max_length=40)] = None,
    email: Annotated[str | None, Form(max_length=320)] = None,
) -> Response:
    """Add a provider (the owner only), then show the page with them in it."""
    if not _owner(me):
        raise ApiError(403, "Only the owner can add providers.", code="owner_only")
    sent = {"name": name, "phone": phone or "", "email": email or ""}
    region = org_settings(me.org).default_region
    number = None
    if phone and phone.strip():
        number = normalize_phone(phone, region=region)
        if number is None:
            error = f"Phone: {phone.strip()} isn't a phone number (read with region {region})."
            return await _board(request, me, database, status_code=422, error=error, form=sent)
    try:
        wanted = ProviderCreate.model_validate(
            {"name": name, "phone": number, "email": (email or "").strip() or None}
        )
    except ValidationError as invalid:
        first = invalid.errors()[0]
        field = str(first["loc"][0]).capitalize() if first["loc"] else "The form"
        error = f"{field}: {first['msg'].removeprefix('Value error, ')}."
        return await _board(request, me, database, status_code=422, error=error, form=sent)
    try:
        await database.run(
            create_provider,
            org_id=me.org.id,
            name=wanted.name,
            phone=wanted.phone,
            email=wanted.email,
        )
    except ProviderExists:
        error = f"There is already a provider called {wanted.name}."
        return await _board(request, me, database, status_code=409, error=error, form=sent)
    return RedirectResponse(f"/app/providers?added={quote(wanted.name)}", status_code=303)


@dataclass(frozen=True)
class FlagShown:
    """A flag with the visits that raised it (those the page could read)."""

    flag: PerformanceFlag
    visits: list[BookingOut]


@router.get("/providers/{provider_id}")
async def provider_page(
    request: Request,
    provider_id: IdParam,
    me: OperatorSessionDep,
    database: DatabaseDep,
    chosen: RangeDep,
) -> Response:
    """One provider: the range's figures and flags with their visits, upcoming and recent
    visits."""
    try:
        provider = await database.read(provider_of, org_id=me.org.id, provider_id=provider_id)
    except NotFound:
        raise ApiError(404, "No such provider.") from None
    now = utcnow()
    start = chosen.start or EARLIEST
    report = await database.read(
        provider_performance,
        org_id=me.org.id,
        provider_id=provider_id,
        start=start,
        end=chosen.end,
        grace=_grace(me),
        now=now,
    )
    in_range = await database.read(
        booking_list,
        org_id=me.org.id,
        starts_from=start,
        starts_to=min(chosen.end, now),
        provider_id=provider_id,
        status=None,
        limit=MAX_BOOKINGS,
    )
    ahead = await database.read(
        booking_list,
        org_id=me.org.id,
        starts_from=now,
        starts_to=None,
        provider_id=provider_id,
        status=None,
        limit=UPCOMING_SHOWN * 2,
    )
    by_id = {visit.booking_id: visit for visit in in_range.items}
    zone = ZoneInfo(org_settings(me.org).timezone)
    return page(
        request,
        "provider.html",
        me=me,
        title=provider.name,
        section="providers",
        provider=provider,
        report=report,
        shown=figures(report),
        flags=[
            FlagShown(flag, [by_id[i] for i in flag.booking_ids if i in by_id])
            for flag in report.flags
        ],
        flagged_ids={i for flag in report.flags for i in flag.booking_ids},
        recent=list(reversed(in_range.items))[:RECENT_SHOWN],
        recent_total=len(in_range.items),
        upcoming=[v for v in ahead.items if v.status != BookingStatus.CANCELLED][:UPCOMING_SHOWN],
        range=chosen,
        presets=_presets(me, provider_id, chosen),
        zone=zone,
        grace=_grace(me),
        grace_words=duration(_grace(me).total_seconds()),
        status_names=BOOKING_STATUS_NAMES,
        lateness=_lateness,
    )


def _presets(me: Current, provider_id: str, chosen: Range) -> list[tuple[str, str, bool]]:
    """Links to the last 7, 30 and 90 days of the provider, the chosen one marked."""
    found = []
    for days in PRESETS:
        preset = last_days(me.org, days)
        same = (preset.first, preset.last) == (chosen.first, chosen.last)
        found.append((f"Last {days} days", f"/app/providers/{provider_id}?{preset.query()}", same))
    return found


def _lateness(visit: BookingOut, grace: timedelta) -> str:
    """How the provider arrived: ``On time``, ``12 min late``, ``No arrival recorded``."""
    if visit.arrived_at is None:
        return "No arrival recorded"
    late = visit.arrived_at - visit.starts_at
    if late <= grace:
        return "On time"
    return f"{duration(late.total_seconds())} late"
