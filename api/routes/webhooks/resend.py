"""Resend: email delivery and engagement events, signed the Svix way."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import ConfigDict, Field
from pydantic.config import JsonValue
from sqlmodel import Session

from api.deps import Database, DatabaseDep, IdParam, SettingsDep, TemporalConnectionDep
from api.errors import invalid
from api.openapi import signed_body
from api.routes.webhooks.common import (
    Notify,
    NulFree,
    ProviderPayload,
    Routing,
    WebhookAck,
    handle,
    plain,
    revoked,
    validated,
    verified,
)
from api.signatures import verify_resend
from models.services.inbound import DeliveryReport, apply_delivery_report
from models.tables import Org
from models.values import MessageStatus, WebhookProvider

router = APIRouter()

#: Resend events and what they say about the email.
RESEND_EVENTS: dict[str, DeliveryReport] = {
    "email.sent": DeliveryReport(status=MessageStatus.SENT),
    "email.delivered": DeliveryReport(status=MessageStatus.DELIVERED),
    "email.delivery_delayed": DeliveryReport(status=None, engagement="delivery delayed"),
    "email.bounced": DeliveryReport(
        status=MessageStatus.FAILED, error="bounced", revoke_consent=True
    ),
    "email.failed": DeliveryReport(status=MessageStatus.FAILED, error="failed"),
    "email.complained": DeliveryReport(
        status=None, engagement="marked as spam", revoke_consent=True
    ),
    "email.opened": DeliveryReport(status=None, engagement="opened"),
    "email.clicked": DeliveryReport(status=None, engagement="clicked"),
}


_KNOWN: list[JsonValue] = [*sorted(RESEND_EVENTS)]


class ResendData(ProviderPayload):
    """The email the event is about."""

    email_id: NulFree | None = Field(default=None, description="The email Resend sent.")


class ResendEvent(ProviderPayload):
    """A Resend event; an email event keepwarm acts on names its email."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "anyOf": [
                {"properties": {"type": {"not": {"enum": _KNOWN}}}},
                {
                    "required": ["data"],
                    "properties": {
                        "data": {
                            "type": "object",
                            "required": ["email_id"],
                            "properties": {"email_id": {"minLength": 1}},
                        }
                    },
                },
            ]
        },
    )

    type: NulFree = Field(description="Other types than these are acknowledged and ignored.")
    data: ResendData | None = None


#: The contract of ``POST /v1/webhooks/resend/{org_id}`` beyond its path.
_REQUEST = signed_body(
    ResendEvent,
    media_type="application/json",
    headers=[
        {
            "name": name,
            "in": "header",
            "required": True,
            "schema": {"type": "string", "minLength": 1},
            "description": description,
        }
        for name, description in (
            ("svix-id", "The event's id: a redelivery carries the same."),
            ("svix-timestamp", "Unix seconds it was signed at (5 minutes' tolerance)."),
            ("svix-signature", "v1,<base64 HMAC-SHA256> of id, timestamp and body."),
        )
    ],
)


@router.post("/resend/{org_id}", openapi_extra=_REQUEST)
async def resend_webhook(
    org_id: IdParam,
    request: Request,
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
    settings: SettingsDep,
) -> WebhookAck:
    """An email event, signed the Svix way with ``RESEND_WEBHOOK_SECRET``."""
    body = await request.body()
    event = verified(
        request,
        WebhookProvider.RESEND,
        org_id,
        lambda: verify_resend(
            secret=plain(settings.resend_webhook_secret), body=body, headers=request.headers
        ),
    )
    return await handle(
        database=database,
        temporal=temporal,
        org_id=org_id,
        provider=WebhookProvider.RESEND,
        payload=event,
        routing=routing(event, database=database),
        event_id=request.headers.get("svix-id", ""),
    )


def routing(payload: dict[str, Any], *, database: Database) -> Routing | None:
    """An email event (its id is the request's ``svix-id``): the email's status moves on, an
    engagement is noted, a bounce or complaint withdraws email consent."""
    parsed = validated(ResendEvent, payload)
    event_type = parsed.type
    report = RESEND_EVENTS.get(event_type)
    if report is None:
        return None  # not an event keepwarm acts on
    email_id = parsed.data.email_id if parsed.data else None
    if not email_id:
        raise invalid("data.email_id", "is needed for an email event")

    def apply(session: Session, org: Org) -> Notify:
        message = apply_delivery_report(
            session,
            org_id=org.id,
            report=report,
            provider_message_id=email_id,
            source=f"resend {event_type}",
        )
        return revoked(session, org_id=org.id, report=report, message=message)

    return Routing(event_id=None, event_type=event_type, apply=apply)
