"""Stripe: payments for a lead (checkout, invoices, refunds)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field
from sqlmodel import Session
from temporalio.client import Client

from api.deps import Database, DatabaseDep, IdParam, SettingsDep, TemporalConnectionDep
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
    object_of,
    plain,
    validated,
    verified,
)
from api.signatures import verify_stripe
from api.temporal import tell
from models.services.inbound import PaymentEvent, record_payment
from models.tables import Org
from models.values import WebhookProvider
from workflows.lead import LeadWorkflow, PaymentReceived

router = APIRouter()

#: Stripe events that move money for a lead: (kind, status).
STRIPE_EVENTS: dict[str, tuple[str, str]] = {
    "checkout.session.completed": ("checkout", "paid"),
    "invoice.paid": ("invoice", "paid"),
    "invoice.payment_failed": ("invoice", "failed"),
    "charge.refunded": ("refund", "refunded"),
}


_AMOUNT = "Minor units, an integer; anything else is recorded as no amount."


class StripeObject(ProviderPayload):
    """The event's object: a Checkout Session, an invoice or a charge."""

    id: NulFree | None = Field(default=None, max_length=100)
    metadata: JsonObject | None = Field(
        default=None, description="`lead_id`: the lead the payment is for."
    )
    currency: NulFree | None = Field(default=None, max_length=8)
    amount_total: JsonValue = Field(default=None, description=_AMOUNT)
    amount_paid: JsonValue = Field(default=None, description=_AMOUNT)
    amount_due: JsonValue = Field(default=None, description=_AMOUNT)
    amount_refunded: JsonValue = Field(default=None, description=_AMOUNT)


class StripeData(ProviderPayload):
    """What the event is about."""

    object: StripeObject


class StripeEvent(ProviderPayload):
    """A Stripe event."""

    id: NulFree = Field(min_length=1, max_length=100)
    type: NulFree = Field(description="Other types than these are acknowledged and ignored.")
    data: StripeData


#: The contract of ``POST /v1/webhooks/stripe/{org_id}`` beyond its path.
_REQUEST = signed_body(
    StripeEvent,
    media_type="application/json",
    headers=[
        {
            "name": "Stripe-Signature",
            "in": "header",
            "required": True,
            "schema": {"type": "string", "minLength": 1},
            "description": "t=<unix seconds>,v1=<hex HMAC-SHA256> of the timestamp and body "
            "(5 minutes' tolerance).",
        }
    ],
)


def _payment(parsed: StripeEvent, *, kind: str, status: str) -> PaymentEvent:
    """The payment an event reports: its object, amount (paid, due or refunded, in minor
    units), currency and the lead in its metadata."""
    obj = parsed.data.object.model_dump()
    amount_field = {
        "checkout": "amount_total",
        "refund": "amount_refunded",
        "invoice": "amount_paid" if status == "paid" else "amount_due",
    }[kind]
    lead_id = object_of(obj.get("metadata")).get("lead_id")
    amount = obj.get(amount_field)
    return PaymentEvent(
        stripe_event_id=parsed.id,
        stripe_object_id=str(obj.get("id") or ""),
        kind=kind,
        status=status,
        amount=amount if isinstance(amount, int) and not isinstance(amount, bool) else None,
        currency=obj.get("currency"),
        lead_id=str(lead_id) if lead_id else None,
    )


@router.post("/stripe/{org_id}", openapi_extra=_REQUEST)
async def stripe_webhook(
    org_id: IdParam,
    request: Request,
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
    settings: SettingsDep,
) -> WebhookAck:
    """A Stripe event, signed with ``STRIPE_WEBHOOK_SECRET``."""
    body = await request.body()
    event = verified(
        request,
        WebhookProvider.STRIPE,
        org_id,
        lambda: verify_stripe(
            secret=plain(settings.stripe_webhook_secret),
            body=body,
            signature=request.headers.get("stripe-signature"),
        ),
    )
    raw = event.to_dict()
    return await handle(
        database=database,
        temporal=temporal,
        org_id=org_id,
        provider=WebhookProvider.STRIPE,
        payload=raw,
        routing=routing(raw, database=database),
    )


def routing(payload: dict[str, Any], *, database: Database) -> Routing | None:
    """A Stripe event that moves money for a lead: its payment recorded on the lead, and the
    lead's workflow told."""
    parsed = validated(StripeEvent, payload)
    known = STRIPE_EVENTS.get(parsed.type)
    if known is None:
        return None
    kind, status = known
    payment = _payment(parsed, kind=kind, status=status)

    def apply(session: Session, org: Org) -> Notify:
        recorded = record_payment(session, org_id=org.id, event=payment)
        if recorded is None or recorded.workflow_id is None:
            return None
        message = PaymentReceived(payment_id=recorded.payment_id, status=status)
        workflow_id = recorded.workflow_id

        async def notify(client: Client) -> None:
            await tell(client, workflow_id, LeadWorkflow.payment_received, message)

        return notify

    return Routing(event_id=parsed.id, event_type=parsed.type, apply=apply)
