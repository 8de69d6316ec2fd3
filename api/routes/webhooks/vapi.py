"""Vapi: end-of-call reports of the calls keepwarm placed, and inbound calls to the org's
Vapi number."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ConfigDict, Field
from sqlmodel import Session
from temporalio.client import Client

from api.deps import Database, DatabaseDep, IdParam, SettingsDep, TemporalConnectionDep
from api.errors import invalid
from api.openapi import signed_body
from api.routes.webhooks.common import (
    JsonObject,
    JsonValue,
    Notify,
    NulFree,
    ProviderPayload,
    Routing,
    WebhookAck,
    handle,
    inbound_call,
    object_of,
    plain,
    validated,
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


#: The server messages keepwarm acts on; others are acknowledged and ignored.
_CALL_MESSAGES = ("end-of-call-report", "status-update")


class VapiPhoneNumber(ProviderPayload):
    """A Vapi number: the org's, that a call was to."""

    id: NulFree | None = None
    number: NulFree | None = Field(default=None, max_length=320)


class VapiCall(ProviderPayload):
    """The call a server message is about."""

    id: NulFree | None = Field(
        default=None, max_length=100, description="Needed for a call message (end of call)."
    )
    type: NulFree | None = Field(
        default=None, description="`inboundPhoneCall` for a call to the org's Vapi number."
    )
    metadata: JsonObject | None = Field(
        default=None, description="`call_key`: the call keepwarm placed."
    )
    customer: JsonObject | None = Field(default=None, description="`number`: the caller.")
    phoneNumber: VapiPhoneNumber | None = None
    phoneNumberId: NulFree | None = None


class VapiMessage(ProviderPayload):
    """A Vapi server message."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "anyOf": [
                {"properties": {"type": {"not": {"enum": list(_CALL_MESSAGES)}}}},
                {
                    "required": ["call"],
                    "properties": {
                        "call": {
                            "type": "object",
                            "required": ["id"],
                            "properties": {"id": {"minLength": 1}},
                        }
                    },
                },
            ]
        },
    )

    type: NulFree = Field(description="Other types than these are acknowledged and ignored.")
    call: VapiCall | None = None
    status: JsonValue = None
    endedReason: NulFree | None = None
    summary: NulFree | None = None
    analysis: JsonObject | None = Field(default=None, description="`summary`, as text.")
    metadata: JsonObject | None = None
    customer: JsonObject | None = None
    phoneNumber: VapiPhoneNumber | None = None
    durationSeconds: JsonValue = Field(default=None, description="A number, else ignored.")
    cost: JsonValue = Field(default=None, description="A number, else ignored.")
    endedAt: JsonValue = Field(default=None, description="An ISO 8601 time, else ignored.")


class VapiServerMessage(ProviderPayload):
    """What Vapi posts to a server URL."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "message": {
                        "type": "end-of-call-report",
                        "call": {"id": "call_example", "metadata": {}},
                        "endedReason": "customer-ended-call",
                        "durationSeconds": 42,
                        "cost": 0.12,
                    }
                },
                {"message": {"type": "conversation-update"}},
            ]
        }
    )

    message: VapiMessage


def _header(name: str, description: str, example: str | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": description,
        **({"example": example} if example is not None else {}),
    }


#: The contract of ``POST /v1/webhooks/vapi/{org_id}`` beyond its path.
_REQUEST = signed_body(
    VapiServerMessage,
    media_type="application/json",
    headers=[
        # Which of them must be valid depends on which scheme is used: prose, not schema.
        _header(
            "x-vapi-secret",
            "The webhook secret itself; or sign with the next two.",
            example="the-webhook-secret",
        ),
        _header("x-signature", "Hex HMAC-SHA256 of `{x-timestamp}.{body}`."),
        _header("x-timestamp", "Unix seconds it was signed at (5 minutes' tolerance)."),
    ],
)


@router.post("/vapi/{org_id}", openapi_extra=_REQUEST)
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
        raise invalid("body", "is not JSON: a Vapi server message is a JSON object") from None
    return await handle(
        database=database,
        temporal=temporal,
        org_id=org_id,
        provider=WebhookProvider.VAPI,
        payload=parsed,
        routing=routing(parsed, database=database),
    )


def routing(payload: dict[str, Any], *, database: Database) -> Routing | None:
    """A Vapi server message: a call's status update (recorded only), or the end-of-call
    report of a call keepwarm placed or of an inbound call to the org's number."""
    validated(VapiServerMessage, payload)
    message: dict[str, Any] = payload["message"]
    kind = str(message["type"])
    call = object_of(message.get("call"))
    call_id = str(call.get("id") or "")
    if kind not in _CALL_MESSAGES:
        return None
    if not call_id:
        raise invalid("message.call.id", "is needed for a call message")
    if kind == "status-update":
        return Routing(
            event_id=f"{call_id}:status:{message.get('status')}",
            event_type=kind,
            apply=lambda session, org: None,
        )
    if call.get("type") == "inboundPhoneCall":
        return _inbound_call(message, call)
    return _end_of_call(message, call)


def _end_of_call(message: dict[str, Any], call: dict[str, Any]) -> Routing:
    """A call keepwarm placed ended: recorded with its outcome, and its call loop told."""
    call_id = str(call["id"])
    metadata = object_of(call.get("metadata") or message.get("metadata"))
    analysis = object_of(message.get("analysis"))
    report = CallReport(
        provider_call_id=call_id,
        call_key=str(metadata["call_key"]) if metadata.get("call_key") else None,
        ended_reason=str(message.get("endedReason") or "unknown"),
        summary=message.get("summary") or _text(analysis.get("summary")),
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

    return Routing(
        event_id=f"{call_id}:end-of-call-report", event_type=str(message["type"]), apply=apply
    )


def _inbound_call(message: dict[str, Any], call: dict[str, Any]) -> Routing:
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

    return inbound_call(
        provider=WebhookProvider.VAPI,
        event_id=f"{call_id}:end-of-call-report",
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


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and "\x00" not in value else None


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
