"""Leads: intake, lists and the lead view with the workflow's live status."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Query, status

from api.actions import book as book_visit
from api.deps import (
    DatabaseDep,
    IdParam,
    OrgDep,
    QueryText,
    TemporalConnectionDep,
    TemporalDep,
)
from api.errors import ApiError, invalid
from api.intake import accept_intake
from api.live_status import lead_live_status
from api.openapi import ORG_KEY, errors
from api.sessions import ActorDep
from models.errors import EventIdTaken, InvalidCursor, LeadClosed, NotFound
from models.reads import leads as lead_reads
from models.reads.leads import lead_calls, lead_view
from models.rules.contacts import normalize_phone
from models.rules.orgs import org_settings
from models.schemas import (
    BookingAccepted,
    BookingIn,
    IntakeAccepted,
    LeadCreate,
    LeadDetail,
    LeadList,
    LeadSort,
    LeadSummary,
)
from models.tables import Lead, utcnow
from models.values import Intent, Stage

router = APIRouter(prefix="/v1/leads", tags=["leads"], responses=errors(*ORG_KEY))
log = logging.getLogger("keepwarm.api.leads")


@router.post("", status_code=status.HTTP_202_ACCEPTED, responses=errors(413, 422))
async def create_lead(
    body: LeadCreate, org: OrgDep, database: DatabaseDep, client: TemporalDep
) -> IntakeAccepted:
    """Accept a form submission or manual lead and start working it."""
    region = org_settings(org).default_region
    phone = None
    if body.phone:
        phone = normalize_phone(body.phone, region=region)
        if phone is None:
            raise invalid(
                "phone", f"is not a valid phone number (read with default region {region})"
            )
    payload = body.model_dump(mode="json") | {"phone": phone}
    accepted = await accept_intake(
        client=client,
        database=database,
        org=org,
        event_id=body.event_id,
        source=body.source,
        payload=payload,
    )
    return IntakeAccepted(
        lead_id=accepted.lead_id, workflow_id=accepted.workflow_id, duplicate=accepted.duplicate
    )


@router.post(
    "/{lead_id}/bookings",
    status_code=status.HTTP_201_CREATED,
    responses=errors(404, 409, 413, 422),
)
async def book(
    lead_id: IdParam,
    body: BookingIn,
    actor: ActorDep,
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
) -> BookingAccepted:
    """The lead booked a visit: the booking is recorded, the lead converts (its sequences
    stop) and the visit's ``Appointment`` workflow confirms it to the customer at once and
    reminds them before it (the org's ``appointments.reminders``).

    The same ``event_id`` again changes nothing (and starts what a failed first try did not);
    a lead that was lost or opted out gets 409 (a converted lead may book again).
    """
    org = actor.org
    if body.starts_at <= utcnow():
        raise invalid("starts_at", "is in the past")
    try:
        booking = await book_visit(
            org_id=org.id,
            lead_id=lead_id,
            event_id=body.event_id,
            starts_at=body.starts_at,
            ends_at=body.ends_at,
            provider_id=body.provider_id,
            service=body.service,
            address=body.address,
            note=body.note,
            database=database,
            temporal=temporal,
        )
    except NotFound as missing:
        what = "provider" if body.provider_id and str(missing) == body.provider_id else "lead"
        name = body.provider_id if what == "provider" else lead_id
        raise ApiError(404, f"No {what} {name!r} in this org.") from None
    except LeadClosed as closed:
        raise ApiError(409, f"The lead is already {closed.stage}.", code="lead_closed") from None
    except EventIdTaken:
        raise ApiError(
            409, "This event_id was already used for another lead.", code="event_id_taken"
        ) from None
    return BookingAccepted(
        lead_id=lead_id,
        booking_id=booking.booking_id,
        workflow_id=booking.workflow_id,
        duplicate=booking.duplicate,
    )


def _summary(lead: Lead, name: str | None) -> LeadSummary:
    return LeadSummary(
        lead_id=lead.id,
        name=name,
        stage=Stage(lead.stage),
        score=lead.score,
        intent=Intent(lead.intent) if lead.intent else None,
        source=lead.source,
        value=lead.value,
        created_at=lead.created_at,
        first_contact_at=lead.first_contact_at,
    )


@router.get("", responses=errors(422))
async def list_leads(
    org: OrgDep,
    database: DatabaseDep,
    stage: Stage | None = None,
    source: QueryText = None,
    q: QueryText = None,
    sort: LeadSort = "recent",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> LeadList:
    """The org's leads, filtered and sorted, a page at a time."""
    try:
        rows, next_cursor = await database.read(
            lead_reads.list_leads,
            org_id=org.id,
            stage=stage,
            source=source,
            q=q,
            sort=sort,
            limit=limit,
            cursor=cursor,
        )
    except InvalidCursor as error:
        raise invalid("cursor", str(error)) from None
    return LeadList(items=[_summary(row.lead, row.name) for row in rows], next_cursor=next_cursor)


@router.get("/{lead_id}", responses=errors(404, 422))
async def read_lead(
    lead_id: IdParam, org: OrgDep, database: DatabaseDep, temporal: TemporalConnectionDep
) -> LeadDetail:
    """One lead: contact, consent, timeline, its calls and what its workflow is doing now."""
    try:
        view = await database.read(lead_view, org_id=org.id, lead_id=lead_id)
    except NotFound:
        raise ApiError(404, f"No lead {lead_id!r} in this org.") from None
    calls = await database.read(lead_calls, org_id=org.id, lead_id=lead_id)
    lead = view.lead
    return LeadDetail(
        **_summary(lead, view.contact.name).model_dump(),
        workflow_id=lead.workflow_id,
        message=lead.message,
        fields=lead.fields,
        contact=view.contact,
        timeline=view.timeline,
        live=await lead_live_status(temporal, lead, lead.timezone or org_settings(org).timezone),
        calls=calls,
    )
