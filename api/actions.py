"""What an operator does, from the JSON API or a page alike: one transaction, then the
workflows told. Domain errors (``ThreadHeld``, ``ReplyRefused``, ``OperatorMissing``...)
go to the caller, which answers them in its own form (JSON or a fragment)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Literal

from temporalio.client import Client

from api.deps import Database, TemporalConnection
from api.errors import ApiError
from api.temporal import acknowledge_alert as tell_alert_acknowledged
from api.temporal import (
    hold_changed,
    retry_send_status,
    start_appointment,
    start_payment_followup,
    start_reply,
    start_retry_send,
    tell,
    tell_booking,
    tell_if_reachable,
    tell_ladder,
)
from models.errors import NotFound, OperatorMissing
from models.reads.alerts import alert_view, silence_view, workflow_of_alert
from models.reads.operators import operator_names
from models.rules.retry import RetryRefused
from models.rules.takeover import Hold
from models.schemas.health import AlertOut, SilenceIn, SilenceOut
from models.schemas.payment_requests import PaymentRequestCreated
from models.schemas.retry import RetryAccepted
from models.services import takeover as takeover_service
from models.services.alerts import add_silence
from models.services.bookings import (
    BookingChanged,
    BookingMade,
    cancel_booking,
    move_booking,
    record_visit_event,
)
from models.services.bookings import book as record_booking
from models.services.escalations import acknowledge_escalation, resolve_escalation
from models.services.merge import merge_contacts
from models.services.payment_requests import create_payment_request
from models.services.replies import ReplyClaim, claim_reply
from models.services.retry import check_retry
from models.services.sign_in import remove_operator as remove_operator_row
from models.tables import Escalation, utcnow
from models.values import AlertState, Channel, MessageStatus, VisitEvent
from workflows.escalation import EscalationWorkflow
from workflows.lead import BookingReceived, ContactMerged, LeadWorkflow
from workflows.retry import retry_send_workflow_id

log = logging.getLogger("keepwarm.api.actions")

#: The two ways a hold changes, by the name routes use for them.
HoldChange = Literal["takeover", "release"]
_HOLD_CHANGES: dict[str, Callable[..., Hold]] = {
    "takeover": takeover_service.take_over,
    "release": takeover_service.release_hold,
}


async def change_hold(
    change: HoldChange,
    *,
    org_id: str,
    thread_id: str,
    operator_id: str,
    database: Database,
    temporal: TemporalConnection,
) -> Hold:
    """Take the thread over (the contact's automation pauses) or release it to the AI, in the
    database, then tell its workflow."""
    hold = await database.run(
        _HOLD_CHANGES[change],
        org_id=org_id,
        thread_id=thread_id,
        operator_id=operator_id,
        now=utcnow(),
    )
    await hold_changed(await temporal.client(), org_id=org_id, hold=hold, operator_id=operator_id)
    return hold


async def reply(
    *,
    org_id: str,
    thread_id: str,
    operator_id: str,
    body: str,
    channel: Channel | None,
    idempotency_key: str | None,
    database: Database,
    temporal: TemporalConnection,
) -> ReplyClaim:
    """Write the operator's reply (through the gate when it is sent), then start its workflow
    and the hold's."""
    key = f"reply/{org_id}/{thread_id}/{idempotency_key or uuid.uuid4().hex}"
    claim = await database.run(
        claim_reply,
        org_id=org_id,
        thread_id=thread_id,
        operator_id=operator_id,
        body=body,
        channel=channel,
        key=key,
        now=utcnow(),
    )
    client = await temporal.client()
    await start_reply(client, org_id=org_id, message_id=claim.message.id)
    if claim.hold.held_by is not None:
        # Every time, not only when this reply took the thread: a retry after a 503 must
        # still start the hold's workflow, or the hold would never time out.
        await hold_changed(client, org_id=org_id, hold=claim.hold, operator_id=operator_id)
    return claim


async def acknowledge(
    *,
    org_id: str,
    escalation_id: str,
    operator_id: str,
    database: Database,
    temporal: TemporalConnection,
) -> Escalation:
    """Someone has it: the escalation stops climbing its ladder."""
    row = await database.run(
        acknowledge_escalation, org_id=org_id, escalation_id=escalation_id, by=operator_id
    )
    await tell_ladder(await temporal.client(), row, EscalationWorkflow.acknowledged, operator_id)
    return row


async def resolve(
    *,
    org_id: str,
    escalation_id: str,
    operator_id: str,
    resolution: str | None,
    database: Database,
    temporal: TemporalConnection,
) -> Escalation:
    """Close the escalation."""
    row = await database.run(
        resolve_escalation,
        org_id=org_id,
        escalation_id=escalation_id,
        by=operator_id,
        resolution=resolution,
    )
    await tell_ladder(await temporal.client(), row, EscalationWorkflow.resolved, operator_id)
    return row


async def merge(
    *, org_id: str, keep_id: str, other_id: str, database: Database, client: Client
) -> list[str]:
    """Move the other contact's identities, consent, leads and messages onto ``keep_id``,
    then tell the moved leads' workflows (best effort: a lead reads its contact again).
    The ids of the workflows told. ``SameContact``, ``NotFound`` as the service raises."""
    workflow_ids = await database.run(
        merge_contacts, org_id=org_id, keep_id=keep_id, other_id=other_id
    )
    signal = ContactMerged(contact_id=keep_id, merged_contact_id=other_id)
    return [
        workflow_id
        for workflow_id in workflow_ids
        if await tell_if_reachable(client, workflow_id, LeadWorkflow.contact_merged, signal)
    ]


async def remove_operator(
    *, org_id: str, operator_id: str, database: Database, temporal: TemporalConnection
) -> None:
    """Remove an operator (``OperatorMissing`` if there is none): the threads they held go
    back to the AI and their workflows hear it; their sessions end."""
    holds = await database.run(
        remove_operator_row, org_id=org_id, operator_id=operator_id, now=utcnow()
    )
    if holds:
        client = await temporal.client()
        for hold in holds:
            await hold_changed(client, org_id=org_id, hold=hold, operator_id=operator_id)


class AlertResolved(Exception):
    """The alert resolved before anyone acknowledged it: there is nothing left to have."""


async def acknowledge_alert(
    *,
    org_id: str,
    alert_id: str,
    operator_id: str,
    database: Database,
    temporal: TemporalConnection,
) -> AlertOut:
    """ "I've got it", as ``operator_id``: the alert's workflow records it (the ladder stops)
    and the alert is answered as it then stands; again, it changes nothing.

    Raises ``NotFound`` (no such alert in the org), ``OperatorMissing``, ``AlertResolved``,
    and ``ApiError`` 503 when Temporal or its worker doesn't answer.
    """
    alert = await database.read(alert_view, org_id=org_id, alert_id=alert_id)
    names = await database.read(operator_names, org_id=org_id)
    if operator_id not in names:
        raise OperatorMissing(operator_id)
    if alert.acknowledged_at is None:
        if alert.state == AlertState.RESOLVED:
            raise AlertResolved(alert_id)
        workflow_id = await database.read(workflow_of_alert, org_id=org_id, alert_id=alert_id)
        told = await tell_alert_acknowledged(
            await temporal.client(),
            workflow_id=workflow_id,
            alert_id=alert_id,
            by=names[operator_id],
        )
        if not told:
            raise AlertResolved(alert_id)
        alert = await database.read(alert_view, org_id=org_id, alert_id=alert_id)
    return alert


class SilenceTooShort(ValueError):
    """A silence that would be over before it began (or already)."""


async def silence(*, org_id: str, wanted: SilenceIn, by: str, database: Database) -> SilenceOut:
    """Hold back the notices of matching alerts from ``starts_at`` (default now) until
    ``until``. ``SilenceTooShort`` when ``until`` is not in the future and after the start."""
    now = utcnow()
    starts_at = wanted.starts_at or now
    if wanted.until <= max(starts_at, now):
        raise SilenceTooShort("must be in the future and after starts_at")
    row = await database.run(
        add_silence,
        org_id=org_id,
        rule=wanted.rule,
        subject=wanted.subject,
        starts_at=starts_at,
        until=wanted.until,
        reason=wanted.reason,
        created_by=by,
    )
    return await database.read(silence_view, org_id=org_id, silence_id=row.id)


async def retry_send(
    *,
    org_id: str,
    message_id: str,
    force: bool,
    requested_by: str | None,
    database: Database,
    temporal: TemporalConnection,
) -> RetryAccepted:
    """Send a failed outbound message again, once, through its ``RetrySend`` workflow
    (``retry-{message_id}``): two requests at once, or one repeated, send it once
    (``duplicate: true``). ``ApiError`` 404 for a message not in the org, 409 for one that
    must not go again (``RetryRefused``'s code) or isn't failed."""
    try:
        current = await database.read(
            check_retry, org_id=org_id, message_id=message_id, force=force, now=utcnow()
        )
    except NotFound:
        raise ApiError(404, f"No message {message_id!r} in this org.") from None
    except RetryRefused as refused:
        raise ApiError(409, str(refused), code=refused.code) from None
    client = await temporal.client()
    accepted = RetryAccepted(
        message_id=message_id, workflow_id=retry_send_workflow_id(message_id), duplicate=True
    )
    if current == MessageStatus.FAILED:
        started = await start_retry_send(
            client, org_id=org_id, message_id=message_id, force=force, requested_by=requested_by
        )
        return accepted.model_copy(update={"duplicate": not started})
    run = await retry_send_status(client, message_id=message_id)
    if run is None:
        raise ApiError(
            409,
            f"Only a failed message can be retried; this one is {current.value}.",
            code="not_failed",
        )
    if current == MessageStatus.PENDING:
        # Reopened by a retry that was cut off (terminated): a new run goes on from there,
        # asking the provider first; a running one is found instead.
        await start_retry_send(
            client, org_id=org_id, message_id=message_id, force=force, requested_by=requested_by
        )
    return accepted


# --- bookings ------------------------------------------------------------------------------


async def book(
    *,
    org_id: str,
    lead_id: str,
    event_id: str,
    starts_at: datetime,
    ends_at: datetime | None,
    provider_id: str | None,
    service: str | None,
    address: str | None,
    note: str | None,
    database: Database,
    temporal: TemporalConnection,
) -> BookingMade:
    """Record that the lead booked a visit (once per ``event_id``), start the visit's
    ``Appointment`` workflow (it confirms and reminds) and tell the lead's workflow (it
    converts). ``NotFound``, ``LeadClosed``, ``EventIdTaken`` as ``services.bookings.book``
    raises them; ``ApiError`` 503 when Temporal can't be reached (recorded: the same
    ``event_id`` again starts what this did not)."""
    made = await database.run(
        record_booking,
        org_id=org_id,
        lead_id=lead_id,
        event_id=event_id,
        starts_at=starts_at,
        ends_at=ends_at,
        provider_id=provider_id,
        service=service,
        address=address,
        note=note,
    )
    client = await temporal.client()
    await start_appointment(
        client,
        org_id=org_id,
        booking_id=made.booking_id,
        lead_id=lead_id,
        workflow_id=made.workflow_id,
    )
    if made.lead_workflow_id is not None:
        told = await tell(
            client,
            made.lead_workflow_id,
            LeadWorkflow.booking_received,
            BookingReceived(booking_id=made.booking_id),
            message="The booking is recorded; retry to convert the lead.",
        )
        if not told:
            log.info("lead %s has no running workflow to tell of its booking", lead_id)
    return made


async def _told(temporal: TemporalConnection, changed: BookingChanged, what: str) -> BookingChanged:
    # Again on a retry that changed nothing, in case the first try's signal was lost.
    await tell_booking(
        await temporal.client(),
        org_id=changed.org_id,
        booking_id=changed.booking_id,
        lead_id=changed.lead_id,
        workflow_id=changed.workflow_id,
        what=what,
        version=changed.version,
    )
    return changed


async def move_visit(
    *,
    org_id: str,
    booking_id: str,
    starts_at: datetime | None,
    ends_at: datetime | None,
    database: Database,
    temporal: TemporalConnection,
    provider_id: str | None = None,
) -> BookingChanged:
    """Move the visit to ``starts_at`` (and ``ends_at``), or give it to ``provider_id``,
    then wake its workflow: the reminders follow and the customer is told once.
    ``NotFound``, ``BookingClosed`` and ``ValueError`` as ``services.bookings.move_booking``
    raises them."""
    changed = await database.run(
        move_booking,
        org_id=org_id,
        booking_id=booking_id,
        starts_at=starts_at,
        ends_at=ends_at,
        provider_id=provider_id,
        now=utcnow(),
    )
    return await _told(temporal, changed, "moved")


async def cancel_visit(
    *,
    org_id: str,
    booking_id: str,
    reason: str | None,
    database: Database,
    temporal: TemporalConnection,
) -> BookingChanged:
    """Cancel the visit, then wake its workflow (no reminder after it; the customer is told
    once). ``NotFound``, ``BookingClosed`` as the service raises them."""
    changed = await database.run(
        cancel_booking, org_id=org_id, booking_id=booking_id, reason=reason, now=utcnow()
    )
    return await _told(temporal, changed, "cancelled")


async def report_visit(
    *,
    org_id: str,
    booking_id: str,
    kind: VisitEvent,
    at: datetime | None,
    database: Database,
    temporal: TemporalConnection,
) -> BookingChanged:
    """Record the provider's news of the visit (on the way, arrived, completed, no-show),
    then wake its workflow. ``NotFound``, ``BookingClosed``, ``ValueError`` (a time in the
    future) as ``services.bookings.record_visit_event`` raises them."""
    changed = await database.run(
        record_visit_event,
        org_id=org_id,
        booking_id=booking_id,
        kind=kind,
        at=at,
        now=utcnow(),
    )
    return await _told(temporal, changed, kind.value)


# --- payment requests ----------------------------------------------------------------------


async def request_payment(
    *,
    org_id: str,
    lead_id: str,
    event_id: str,
    amount: int,
    currency: str,
    description: str,
    due_at: datetime,
    database: Database,
    client: Client,
) -> PaymentRequestCreated:
    """Record that the lead is asked to pay ``amount`` (minor units) of ``currency`` by
    ``due_at`` (once per ``event_id``), then start its ``PaymentFollowup`` workflow, which
    makes the payment link (simulated in dry run), sends it and follows it up; the link, if
    made within a few seconds (``url`` ``None`` past that).

    Raises ``NotFound``, ``LeadClosed``, ``EventIdTaken`` as
    ``services.payment_requests.create_payment_request`` does, and ``ApiError`` 503 when
    Temporal can't be reached (recorded: the same ``event_id`` again starts it).
    """
    made = await database.run(
        create_payment_request,
        org_id=org_id,
        lead_id=lead_id,
        event_id=event_id,
        amount=amount,
        currency=currency,
        description=description,
        due_at=due_at,
    )
    # A request found again with its link already made has its workflow running or done.
    url = made.url or await start_payment_followup(
        client,
        org_id=org_id,
        request_id=made.payment_request_id,
        lead_id=lead_id,
        workflow_id=made.workflow_id,
    )
    return PaymentRequestCreated(
        payment_request_id=made.payment_request_id,
        workflow_id=made.workflow_id,
        url=url,
        duplicate=made.duplicate,
    )
