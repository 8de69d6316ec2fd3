"""Vapi: end-of-call reports of the calls keepwarm placed, and inbound calls to the org's
Vapi number."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from sqlmodel import Session
from temporalio.client import Client

from api.deps import (
    Database,
    DatabaseDep,
    IdParam,
    SettingsDep,
    TemporalConnection,
    TemporalConnectionDep,
)
from api.errors import ApiError
from api.routes.webhooks.common import (
    Notify,
    WebhookAck,
    handle,
    inbound_call,
    object_of,
    plain,
    verified,
)
from api.signatures import verify_vapi
from api.temporal import tell
from models.rules.calls import outcome_of
from models.rules.orgs import org_settings
from models.services.calls import CallReport, record_call_report
from models.services.inbound import InboundCall
from models.tables import Org
from models.values import CallOutcome, WebhookProvider
from workflows.calls import CallEnded, CallWorkflow

log = logging.getLogger("keepwarm.webhooks")
router = APIRouter()


@router.post("/vapi/{org_id}")
async def vapi_webhook(
    org_id: IdParam,
    request: Request,
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
    settings: SettingsDep,
) -> WebhookAck:
    """A Vapi server message, with ``x-vapi-secret`` or an HMAC signature."""
    body = await request.body()
    verified(
        request,
        WebhookProvider.VAPI,
        org_id,
        lambda: verify_vapi(
            secret=plain(settings.vapi_webhook_secret), body=body, headers=request.headers
        ),
    )
    try:
        parsed = json.loads(body)
    except ValueError:
        raise ApiError(422, "A Vapi server message is JSON.") from None
    message = parsed.get("message") if isinstance(parsed, dict) else None
    if not isinstance(message, dict):
        raise ApiError(422, "A Vapi server message has a `message` object.")
    kind = str(message.get("type", ""))
    call = object_of(message.get("call"))
    call_id = str(call.get("id") or "")
    if kind not in {"end-of-call-report", "status-update"}:
        return WebhookAck(duplicate=False)
    if not call_id:
        raise ApiError(422, "A Vapi call message needs call.id.")
    if kind == "status-update":
        return await handle(
            database=database,
            temporal=temporal,
            org_id=org_id,
            provider=WebhookProvider.VAPI,
            event_id=f"{call_id}:status:{message.get('status')}",
            event_type=kind,
            payload=parsed,
            apply=lambda session, org: None,
        )
    if call.get("type") == "inboundPhoneCall":
        return await _inbound_call(database, temporal, org_id, parsed, message, call)
    metadata = object_of(call.get("metadata") or message.get("metadata"))
    analysis = object_of(message.get("analysis"))
    report = CallReport(
        provider_call_id=call_id,
        call_key=str(metadata["call_key"]) if metadata.get("call_key") else None,
        ended_reason=str(message.get("endedReason") or "unknown"),
        summary=message.get("summary") or analysis.get("summary"),
        duration_s=_number(message.get("durationSeconds")),
        cost=_number(message.get("cost")),
        ended_at=_timestamp(message.get("endedAt")),
    )

    def apply(session: Session, org: Org) -> Notify:
        recorded = record_call_report(session, org_id=org.id, report=report)
        if recorded is None:
            return None  # not a call keepwarm placed for this org
        ended = CallEnded(
            call_id=recorded.id,
            ended_reason=report.ended_reason,
            outcome=CallOutcome(recorded.outcome) if recorded.outcome else None,
        )
        workflow_id = recorded.workflow_id

        async def notify(client: Client) -> None:
            await tell(client, workflow_id, CallWorkflow.call_ended, ended)

        return notify

    return await handle(
        database=database,
        temporal=temporal,
        org_id=org_id,
        provider=WebhookProvider.VAPI,
        event_id=f"{call_id}:end-of-call-report",
        event_type=kind,
        payload=parsed,
        apply=apply,
    )


async def _inbound_call(
    database: Database,
    temporal: TemporalConnection,
    org_id: str,
    parsed: dict[str, Any],
    message: dict[str, Any],
    call: dict[str, Any],
) -> WebhookAck:
    """An inbound call to the org's Vapi number ended; unanswered unless its ``endedReason``
    says someone (the assistant) spoke with the caller."""
    call_id = str(call["id"])
    customer = object_of(call.get("customer") or message.get("customer"))
    number = object_of(call.get("phoneNumber") or message.get("phoneNumber"))
    number_id = call.get("phoneNumberId") or number.get("id")
    missed = outcome_of(str(message.get("endedReason") or "")) != CallOutcome.ANSWERED

    def ours(org: Org) -> bool:
        # Vapi's signature doesn't cover the org in the path: a call to another org's number
        # is not this org's to answer.
        own = org_settings(org).vapi_phone_number_id
        if own and number_id and number_id != own:
            log.warning("vapi call %s for org %s was to another number; ignored", call_id, org.id)
            return False
        return True

    return await inbound_call(
        database=database,
        temporal=temporal,
        org_id=org_id,
        provider=WebhookProvider.VAPI,
        event_id=f"{call_id}:end-of-call-report",
        payload=parsed,
        caller=str(customer.get("number") or ""),
        call=lambda phone: InboundCall(
            provider_call_id=call_id,
            from_phone=phone,
            to_address=str(number["number"]) if number.get("number") else None,
            missed=missed,
            source="vapi",
        ),
        accept=ours,
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
