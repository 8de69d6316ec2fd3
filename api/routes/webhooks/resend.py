"""Resend: email delivery and engagement events, signed the Svix way."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlmodel import Session

from api.deps import DatabaseDep, IdParam, SettingsDep, TemporalConnectionDep
from api.errors import ApiError
from api.routes.webhooks.common import (
    Notify,
    WebhookAck,
    handle,
    object_of,
    plain,
    revoked,
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


@router.post("/resend/{org_id}")
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
    if not isinstance(event, dict):
        raise ApiError(422, "A Resend event is a JSON object.")
    event_type = str(event.get("type", ""))
    report = RESEND_EVENTS.get(event_type)
    if report is None:
        return WebhookAck(duplicate=False)  # not an event keepwarm acts on
    data = object_of(event.get("data"))
    email_id = str(data.get("email_id") or "") or None
    if email_id is None:
        raise ApiError(422, "A Resend email event needs data.email_id.")

    def apply(session: Session, org: Org) -> Notify:
        message = apply_delivery_report(
            session,
            org_id=org.id,
            report=report,
            provider_message_id=email_id,
            source=f"resend {event_type}",
        )
        return revoked(session, org_id=org.id, report=report, message=message)

    return await handle(
        database=database,
        temporal=temporal,
        org_id=org_id,
        provider=WebhookProvider.RESEND,
        event_id=request.headers.get("svix-id", ""),
        event_type=event_type,
        payload=event,
        apply=apply,
    )
