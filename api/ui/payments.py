"""Asking a lead to pay, from the Lead page's "Request a payment" form.

The form takes the amount as a person writes it (``120.50``, in the currency's major unit)
and a due date on the org's clock (due at ``DUE_HOUR`` that day; a week from today if left
empty). It is the same use case the JSON API runs (``api.actions.request_payment``): the
request recorded, then its ``PaymentFollowup`` workflow started, which makes the link and
sends it. A double submit is one request, by the ``event_id`` the form's render carried.
What was wrong: the Lead page again with the form as sent and the reason by the field; done:
the browser goes to the Lead page, which says so and lists the request.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from api import actions
from api.deps import DatabaseDep, IdParam, SettingsDep, TemporalConnectionDep
from api.errors import ApiError
from api.sessions import OperatorSessionDep
from api.ui.leads import DUE_HOUR, currency_choices, render_lead
from api.ui.render import local_time
from models.errors import EventIdTaken, LeadClosed, NotFound
from models.reads.payment_requests import usual_currency
from models.rules.orgs import org_settings
from models.rules.payment_requests import BadAmount, amount_in_minor_units
from models.schemas.fields import check_text
from models.tables import utcnow

router = APIRouter(prefix="/app", include_in_schema=False)

#: Due this many days from today when the form leaves the date empty (as the JSON API).
DEFAULT_DUE_DAYS = 7
#: The farthest ahead a due date may be (a typo of the year, not a plan).
FURTHEST = timedelta(days=366)
#: At most this long, as the JSON API takes it.
DESCRIPTION_MAX = 200


def due_moment(value: str, zone: ZoneInfo, *, now: datetime) -> datetime:
    """The due date a person gave (``2026-07-14``, or empty for a week from today) as the
    moment the request is due: ``DUE_HOUR`` that day in ``zone``. ``ValueError`` in words
    for a date that isn't one, has passed or is more than a year away."""
    today = now.astimezone(zone).date()
    typed = value.strip()
    if typed:
        try:
            day = date.fromisoformat(typed)
        except ValueError:
            raise ValueError("Give a date, like 2026-07-14.") from None
    else:
        day = today + timedelta(days=DEFAULT_DUE_DAYS)
    moment = datetime.combine(day, DUE_HOUR, tzinfo=zone)
    if moment <= now:
        if day == today:
            raise ValueError(f"It is past {DUE_HOUR:%H:%M} today; choose tomorrow or later.")
        raise ValueError(f"{local_time(moment, zone)} has passed; choose a date ahead.")
    if moment > now + FURTHEST:
        raise ValueError(f"{local_time(moment, zone)} is more than a year away.")
    return moment


def _description(value: str) -> str:
    """What the request is for, trimmed; ``ValueError`` in words if it can't be sent."""
    text = value.strip()
    if not text:
        raise ValueError("Say what it is for, like “Deep clean, 14 July”.")
    if len(text) > DESCRIPTION_MAX:
        raise ValueError(f"At most {DESCRIPTION_MAX} characters; this is {len(text)}.")
    try:
        return check_text(text)
    except ValueError:
        raise ValueError("Remove the control characters (pasted from elsewhere).") from None


@router.post("/leads/{lead_id}/payment-requests")
async def request_payment(
    request: Request,
    lead_id: IdParam,
    me: OperatorSessionDep,
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
    settings: SettingsDep,
    event_id: Annotated[str, Form(min_length=1, max_length=64)],
    amount: Annotated[str, Form(max_length=40)] = "",
    currency: Annotated[str, Form(max_length=8)] = "",
    description: Annotated[str, Form(max_length=1000)] = "",
    due_on: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Ask the lead to pay, then go to the Lead page saying so. A bad field: the Lead page
    with the form as sent (the same ``event_id``) and what is wrong beside that field;
    nothing is recorded."""
    sent = {
        "event_id": event_id,
        "amount": amount,
        "currency": currency.strip().lower(),
        "description": description,
        "due_on": due_on,
    }

    async def again(
        status_code: int, *, pay_errors: dict[str, str] | None = None, pay_error: str = ""
    ) -> Response:
        return await render_lead(
            request,
            me,
            lead_id,
            database,
            temporal,
            settings,
            status_code=status_code,
            pay_form=sent,
            pay_errors=pay_errors or {},
            pay_error=pay_error,
        )

    zone = ZoneInfo(org_settings(me.org).timezone)
    wrong: dict[str, str] = {}
    code = sent["currency"]
    minor = 0
    if code not in currency_choices(await database.read(usual_currency, org_id=me.org.id)):
        wrong["currency"] = "Choose a currency from the list."
    else:
        try:
            minor = amount_in_minor_units(amount, code)
        except BadAmount as bad:
            wrong["amount"] = str(bad)
    what = ""
    try:
        what = _description(description)
    except ValueError as bad:
        wrong["description"] = str(bad)
    due_at: datetime | None = None
    try:
        due_at = due_moment(due_on, zone, now=utcnow())
    except ValueError as bad:
        wrong["due_on"] = str(bad)
    if wrong or due_at is None:
        return await again(422, pay_errors=wrong)
    try:
        made = await actions.request_payment(
            org_id=me.org.id,
            lead_id=lead_id,
            event_id=f"page:{event_id.strip()}",
            amount=minor,
            currency=code,
            description=what,
            due_at=due_at,
            database=database,
            client=await temporal.client(),
        )
    except NotFound:
        raise ApiError(404, "No such lead.") from None
    except LeadClosed as closed:
        stage = closed.stage.replace("_", " ")
        return await again(409, pay_error=f"The lead is {stage}: it can't be asked to pay.")
    except EventIdTaken:
        return await again(409, pay_error="This form was already used for another lead.")
    except ApiError as error:
        if error.status != 503:
            raise
        return await again(
            503, pay_error=f"{error.message} Press “Request the payment” again in a moment."
        )
    done = "payment_again" if made.duplicate else "payment_requested"
    target = f"/app/leads/{quote(lead_id, safe='')}?done={done}#payments-section"
    if request.headers.get("hx-request") == "true":
        return Response(status_code=200, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)
