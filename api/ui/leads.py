"""The Lead page: stage, score with its reasons, what its workflow says it is waiting for
(or the last known state, "as of", when no worker answers), calls, its visits and the form
that books one (api/ui/bookings.py takes it), its payment requests and the form that makes
one (api/ui/payments.py takes it), the timeline, and a link to the workflow in the Temporal
Web UI."""

from __future__ import annotations

import uuid
from datetime import time
from typing import Annotated, Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from api.deps import DatabaseDep, IdParam, SettingsDep, TemporalConnectionDep
from api.errors import ApiError
from api.live_status import lead_live_status
from api.sessions import OperatorSessionDep
from api.ui.render import page
from models.errors import NotFound
from models.reads.bookings import lead_bookings
from models.reads.leads import lead_calls, lead_view
from models.reads.payment_requests import payment_request_list, usual_currency
from models.reads.providers import provider_list
from models.rules.orgs import org_settings
from models.services.sign_in import Current
from models.settings import Settings
from models.tables import utcnow
from models.values import BookingStatus, ProviderMode, Stage, TimelineKind

router = APIRouter(prefix="/app", include_in_schema=False)

STAGE_NAMES = {
    "new": "New",
    "contacted": "Contacted",
    "engaged": "Engaged",
    "quoted": "Quoted",
    "converted": "Converted",
    "ghosting": "Gone quiet",
    "lost": "Lost",
    "opted_out": "Opted out",
}
#: A visit's status in words (never by colour alone).
BOOKING_STATUS_NAMES = {
    BookingStatus.SCHEDULED: "Scheduled",
    BookingStatus.CONFIRMED: "Confirmed by the customer",
    BookingStatus.COMPLETED: "Completed",
    BookingStatus.NO_SHOW: "No-show",
    BookingStatus.CANCELLED: "Cancelled",
}
#: A lead at these stages can't book (a converted one can: a returning customer), nor be
#: asked to pay.
UNBOOKABLE = frozenset({Stage.LOST, Stage.OPTED_OUT})
#: The currencies the "Request a payment" form offers (the org's usual one is added if it
#: is another); without a usual one, the first.
CURRENCIES = {
    "usd": "USD (US dollar)",
    "gbp": "GBP (pound sterling)",
    "eur": "EUR (euro)",
    "cad": "CAD (Canadian dollar)",
    "aud": "AUD (Australian dollar)",
    "nzd": "NZD (New Zealand dollar)",
}
#: A payment request is due at this hour of its due date, on the org's clock.
DUE_HOUR = time(17)
#: What the Lead page says after an action (``?done=``): fixed words, never the query's own.
DONE = {
    "payment_requested": (
        "Payment requested. The customer gets the link now, a reminder the day before it is "
        "due, and reminders after that while it is unpaid."
    ),
    "payment_again": (
        "That form was already sent: it made the request listed below, and only that one."
    ),
}


def currency_choices(usual: str | None) -> dict[str, str]:
    """The currencies the form offers: ``CURRENCIES``, and ``usual`` if it is another."""
    if usual and usual not in CURRENCIES:
        return {**CURRENCIES, usual: usual.upper()}
    return CURRENCIES


async def _context(
    me: Current,
    lead_id: str,
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
    settings: Settings,
) -> dict[str, Any]:
    try:
        view = await database.read(lead_view, org_id=me.org.id, lead_id=lead_id)
    except NotFound:
        raise ApiError(404, "No such lead.") from None
    lead = view.lead
    calls = await database.read(lead_calls, org_id=me.org.id, lead_id=lead_id)
    visits = await database.read(lead_bookings, org_id=me.org.id, lead_id=lead_id)
    payments = await database.read(
        payment_request_list, org_id=me.org.id, status=None, lead_id=lead_id
    )
    live = await lead_live_status(temporal, lead, lead.timezone or org_settings(me.org).timezone)
    scored = next((e for e in view.timeline if e.kind == TimelineKind.SCORED), None)
    base = settings.effective_temporal_ui_url
    namespace = quote(settings.temporal_namespace, safe="")
    return {
        "view": view,
        "calls": calls,
        "live": live,
        "now": utcnow(),
        "reasons": (scored.data or {}).get("reasons", []) if scored else [],
        "last_event": view.timeline[0] if view.timeline else None,
        "stage_names": STAGE_NAMES,
        "visits": visits.items,
        "payments": payments.items,
        "status_names": BOOKING_STATUS_NAMES,
        "zone": ZoneInfo(org_settings(me.org).timezone),
        "temporal_url": (
            f"{base}/namespaces/{namespace}/workflows/{quote(lead.workflow_id, safe='')}"
            if base
            else None
        ),
    }


async def render_lead(
    request: Request,
    me: Current,
    lead_id: str,
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
    settings: Settings,
    *,
    status_code: int = 200,
    form: dict[str, str] | None = None,
    pay_form: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """The whole Lead page, with its "Book a visit" and "Request a payment" forms: each empty
    with a fresh ``event_id`` (one booking, one request, however often that render is
    submitted), or as it was sent (``form``, ``pay_form``: the same ``event_id``) beside what
    was wrong with it."""
    context = await _context(me, lead_id, database, temporal, settings)
    providers = await database.read(provider_list, org_id=me.org.id)
    usual = await database.read(usual_currency, org_id=me.org.id)
    lead = context["view"].lead
    return page(
        request,
        "lead.html",
        me=me,
        title="Lead",
        section="inbox",
        status_code=status_code,
        providers=providers.items,
        bookable=Stage(lead.stage) not in UNBOOKABLE,
        form=form or {"event_id": uuid.uuid4().hex},
        pay_form=pay_form or {"event_id": uuid.uuid4().hex, "currency": usual or "usd"},
        currencies=currency_choices(usual),
        due_hour=DUE_HOUR,
        dry_run=org_settings(me.org).provider_mode == ProviderMode.DRY_RUN,
        **context,
        **extra,
    )


@router.get("/leads/{lead_id}")
async def lead_page(
    request: Request,
    lead_id: IdParam,
    me: OperatorSessionDep,
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
    settings: SettingsDep,
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """One lead (``done``: what the last action did)."""
    return await render_lead(
        request, me, lead_id, database, temporal, settings, notice=DONE.get(done or "")
    )


@router.get("/leads/{lead_id}/live")
async def lead_live(
    request: Request,
    lead_id: IdParam,
    me: OperatorSessionDep,
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
    settings: SettingsDep,
    part: Literal["summary", "timeline", "payments"] = "summary",
) -> Response:
    """One of the lead's live parts alone (a live region re-fetches it): the summary (stage,
    score, status, visits, calls), the payment requests or the timeline."""
    context = await _context(me, lead_id, database, temporal, settings)
    block = {"timeline": "lead_timeline", "payments": "lead_payments"}.get(part, "lead_live")
    return page(request, "lead.html", me=me, block=block, **context)
