"""Leads: intake, lists and the lead view with the workflow's live status."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, status
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import TemporalError

from api.deps import (
    QUERY_TIMEOUT,
    DatabaseDep,
    IdParam,
    OrgDep,
    QueryText,
    TemporalConnection,
    TemporalConnectionDep,
    TemporalDep,
)
from api.errors import ApiError, invalid
from api.intake import accept_intake
from api.openapi import ORG_KEY, errors
from api.temporal import tell
from models.errors import EventIdTaken, InvalidCursor, LeadClosed, NotFound
from models.reads import leads as lead_reads
from models.reads.leads import lead_calls, lead_view
from models.rules.contacts import normalize_phone
from models.rules.orgs import org_settings
from models.schemas import (
    Attempts,
    BookingAccepted,
    BookingIn,
    IntakeAccepted,
    LeadCreate,
    LeadDetail,
    LeadList,
    LeadSort,
    LeadSummary,
    LiveStatus,
)
from models.services.intake import record_booking
from models.tables import Lead
from models.values import Intent, Stage
from workflows.lead import BookingReceived, LeadResult, LeadWorkflow
from workflows.nudge import NudgeSequenceWorkflow
from workflows.payloads import step_words

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
    status_code=status.HTTP_202_ACCEPTED,
    responses=errors(404, 409, 413, 422),
)
async def book(
    lead_id: IdParam, body: BookingIn, org: OrgDep, database: DatabaseDep, client: TemporalDep
) -> BookingAccepted:
    """The lead booked: noted on its timeline, and the lead converts (its sequences stop).

    The same ``event_id`` again changes nothing; a lead that already closed gets 409.
    """
    try:
        booking = await database.run(
            record_booking,
            org_id=org.id,
            lead_id=lead_id,
            event_id=body.event_id,
            starts_at=body.starts_at,
            note=body.note,
        )
    except NotFound:
        raise ApiError(404, f"No lead {lead_id!r} in this org.") from None
    except LeadClosed as closed:
        raise ApiError(409, f"The lead is already {closed.stage}.", code="lead_closed") from None
    except EventIdTaken:
        raise ApiError(
            409, "This event_id was already used for another lead.", code="event_id_taken"
        ) from None
    told = await tell(
        client,
        booking.workflow_id,
        LeadWorkflow.booking_received,
        BookingReceived(booking_id=booking.receipt_id),
        message="The booking is recorded; retry to convert the lead.",
    )
    if not told:
        log.info("lead %s has no running workflow to tell of its booking", lead_id)
    return BookingAccepted(
        lead_id=lead_id, booking_id=booking.receipt_id, duplicate=booking.duplicate
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
        rows, next_cursor = await database.run(
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
        view = await database.run(lead_view, org_id=org.id, lead_id=lead_id)
    except NotFound:
        raise ApiError(404, f"No lead {lead_id!r} in this org.") from None
    calls = await database.run(lead_calls, org_id=org.id, lead_id=lead_id)
    lead = view.lead
    return LeadDetail(
        **_summary(lead, view.contact.name).model_dump(),
        workflow_id=lead.workflow_id,
        message=lead.message,
        fields=lead.fields,
        contact=view.contact,
        timeline=view.timeline,
        live=await _live(temporal, lead, lead.timezone or org_settings(org).timezone),
        calls=calls,
    )


async def _live(temporal: TemporalConnection, lead: Lead, timezone: str) -> LiveStatus | None:
    """The workflow's own account of the lead, or ``None`` if it can't be asked right now.

    The rest of the lead view comes from the database, so Temporal being down or a workflow
    failing its tasks costs only this part.
    """
    try:
        client = await temporal.client()
    except ApiError:
        return None
    handle = client.get_workflow_handle(lead.workflow_id, result_type=LeadResult)
    try:
        description = await handle.describe(rpc_timeout=QUERY_TIMEOUT)
        memo_lead = await description.memo_value("lead_id", default="", type_hint=str)
        if memo_lead != lead.id:
            # The person has a newer lead on the same workflow id; this one is over.
            return LiveStatus(workflow_id=lead.workflow_id, status="closed")
        execution = description.status.name.lower() if description.status else "unknown"
        if description.status != WorkflowExecutionStatus.RUNNING:
            return LiveStatus(workflow_id=lead.workflow_id, status=execution)
        answer = await asyncio.wait_for(
            handle.query(LeadWorkflow.status, rpc_timeout=QUERY_TIMEOUT),
            timeout=QUERY_TIMEOUT.total_seconds(),
        )
    except (TemporalError, TimeoutError) as error:
        log.info("live status of %s unavailable: %s", lead.workflow_id, error)
        return None
    live = LiveStatus(
        workflow_id=lead.workflow_id,
        status=execution,
        next_action=answer.next_action,
        next_action_at=answer.next_action_at,
        attempts=Attempts(used=answer.attempts_used, cap=answer.attempts_cap),
        waiting_reason=answer.waiting_reason,
    )
    if answer.nudge_workflow_id:
        return await _with_sequence(client, live, answer.nudge_workflow_id, timezone)
    return live


async def _with_sequence(
    client: Client, live: LiveStatus, nudge_id: str, timezone: str
) -> LiveStatus:
    """The lead's live status with its sequence's next step, in the contact's local time."""
    try:
        progress = await asyncio.wait_for(
            client.get_workflow_handle(nudge_id).query(
                NudgeSequenceWorkflow.progress, rpc_timeout=QUERY_TIMEOUT
            ),
            timeout=QUERY_TIMEOUT.total_seconds(),
        )
    except (TemporalError, TimeoutError) as error:
        log.info("sequence progress of %s unavailable: %s", nudge_id, error)
        return live
    if progress.next_at is None or progress.next_channel is None or not progress.steps_total:
        return live
    # The zone the sequence reckoned the step in (runs from before it reported one: ours).
    timezone = progress.timezone or timezone
    local = progress.next_at.astimezone(ZoneInfo(timezone))
    when = f"{local:%H:%M} {timezone}"
    if local.date() != datetime.now(ZoneInfo(timezone)).date():
        when = f"{local:%a %d %b} {when}"
    words = step_words(
        progress.next_channel,
        when=when,
        number=progress.steps_done + 1,
        total=progress.steps_total,
    )
    return live.model_copy(
        update={
            "next_action": words.next_action,
            "next_action_at": progress.next_at,
            "waiting_reason": words.waiting_reason,
            "attempts": Attempts(
                used=live.attempts.used + progress.sent if live.attempts else progress.sent,
                cap=(live.attempts.cap if live.attempts else 0) + progress.steps_total,
            ),
        }
    )
