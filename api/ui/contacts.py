"""The Customer page: one person's identities and where they came from, their leads, their
payment requests across those leads (read only), one timeline, the consent log, and the
contacts that may be the same person, merged on confirm.

The page and its live block render from one template through one authorization: another
org's contact is 404 on the page, the block and the merge.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from api import actions
from api.deps import DatabaseDep, IdParam, TemporalConnectionDep
from api.errors import ApiError
from api.sessions import OperatorSessionDep
from api.ui.render import page
from models.errors import NotFound, SameContact
from models.reads.customer import customer_view
from models.reads.payment_requests import payment_request_list
from models.rules.orgs import org_settings
from models.services.sign_in import Current
from models.tables import utcnow

router = APIRouter(prefix="/app", include_in_schema=False)

IDENTITY_NAMES = {
    "email": "Email",
    "phone": "Phone",
    "stripe_customer": "Stripe customer",
    "shopify_customer": "Shopify customer",
    "instagram": "Instagram",
}
CHANNEL_NAMES = {"sms": "SMS", "whatsapp": "WhatsApp", "email": "Email", "voice": "Voice"}
#: The live block re-fetches on these leads' events too (their timelines): the first few.
LIVE_LEADS = 20


async def _context(me: Current, database: DatabaseDep, contact_id: str) -> dict[str, Any]:
    try:
        view = await database.read(customer_view, org_id=me.org.id, contact_id=contact_id)
    except NotFound:
        raise ApiError(404, "No such contact.") from None
    payments = await database.read(
        payment_request_list, org_id=me.org.id, status=None, lead_id=None, contact_id=contact_id
    )
    return {
        "view": view,
        "payments": payments.items,
        # A request's lead by the words the Leads table links it with.
        "lead_names": {
            lead.id: f"From {lead.source or 'an unnamed source'}, {lead.created_at:%d %b %Y}"
            for lead in view.leads
        },
        "zone": ZoneInfo(org_settings(me.org).timezone),
        "now": utcnow(),
        "identity_names": IDENTITY_NAMES,
        "channel_names": CHANNEL_NAMES,
        "live_leads": view.leads[:LIVE_LEADS],
    }


async def _render(
    request: Request,
    me: Current,
    database: DatabaseDep,
    contact_id: str,
    *,
    block: str | None = None,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    context = await _context(me, database, contact_id)
    name = context["view"].contact.name or "Unknown contact"
    return page(
        request,
        "contact.html",
        me=me,
        block=block,
        status_code=status_code,
        title=name,
        section="inbox",
        **context,
        **extra,
    )


@router.get("/contacts/{contact_id}")
async def customer(
    request: Request,
    contact_id: IdParam,
    me: OperatorSessionDep,
    database: DatabaseDep,
    merged: Annotated[str | None, Query(max_length=64)] = None,
    merge: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """The Customer page (``merged``: the notice after a merge; ``merge``: the confirm to
    show open, for a page without script or a duplicate that appeared after it loaded)."""
    notice = (
        f"Contact {merged} was merged into this one: its identities, leads and messages are here."
        if merged
        else None
    )
    return await _render(request, me, database, contact_id, notice=notice, confirm=merge)


@router.get("/contacts/{contact_id}/view")
async def customer_block(
    request: Request, contact_id: IdParam, me: OperatorSessionDep, database: DatabaseDep
) -> Response:
    """The page's live block alone (a live region re-fetches it)."""
    return await _render(request, me, database, contact_id, block="customer")


@router.post("/contacts/{contact_id}/merge")
async def merge(
    request: Request,
    contact_id: IdParam,
    me: OperatorSessionDep,
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
    other_id: Annotated[str, Form(max_length=64)],
) -> Response:
    """Fold ``other_id`` into this contact, then go to this contact's page. An ``other_id``
    not of this org (404) or this contact itself (422): the page with the error, nothing
    changed."""
    other_id = other_id.strip()
    try:
        await actions.merge(
            org_id=me.org.id,
            keep_id=contact_id,
            other_id=other_id,
            database=database,
            client=await temporal.client(),
        )
    except SameContact:
        error = "A contact can't be merged into itself; nothing was merged."
        return await _render(request, me, database, contact_id, status_code=422, error=error)
    except NotFound as missing:
        if str(missing) != other_id:
            raise ApiError(404, "No such contact.") from None
        error = f"There is no contact {other_id} here to merge; nothing was merged."
        return await _render(request, me, database, contact_id, status_code=404, error=error)
    target = f"/app/contacts/{quote(contact_id, safe='')}?merged={quote(other_id, safe='')}"
    if request.headers.get("hx-request") == "true":
        return Response(status_code=200, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)
