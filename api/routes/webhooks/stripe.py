"""Stripe: payments for a lead (checkout, invoices, refunds)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlmodel import Session
from temporalio.client import Client

from api.deps import DatabaseDep, IdParam, SettingsDep, TemporalConnectionDep
from api.routes.webhooks.common import Notify, WebhookAck, handle, object_of, plain, verified
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


@router.post("/stripe/{org_id}")
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
    known = STRIPE_EVENTS.get(event.type)
    if known is None:
        return WebhookAck(duplicate=False)
    kind, status = known
    obj = object_of(event.data.object.to_dict())
    amount_field = {
        "checkout": "amount_total",
        "refund": "amount_refunded",
        "invoice": "amount_paid" if status == "paid" else "amount_due",
    }[kind]
    lead_id = object_of(obj.get("metadata")).get("lead_id")
    amount = obj.get(amount_field)
    payment = PaymentEvent(
        stripe_event_id=event.id,
        stripe_object_id=str(obj.get("id") or ""),
        kind=kind,
        status=status,
        amount=amount if isinstance(amount, int) else None,
        currency=obj.get("currency"),
        lead_id=str(lead_id) if lead_id else None,
    )

    def apply(session: Session, org: Org) -> Notify:
        recorded = record_payment(session, org_id=org.id, event=payment)
        if recorded is None or recorded.workflow_id is None:
            return None
        message = PaymentReceived(payment_id=recorded.payment_id, status=status)
        workflow_id = recorded.workflow_id

        async def notify(client: Client) -> None:
            await tell(client, workflow_id, LeadWorkflow.payment_received, message)

        return notify

    return await handle(
        database=database,
        temporal=temporal,
        org_id=org_id,
        provider=WebhookProvider.STRIPE,
        event_id=event.id,
        event_type=event.type,
        payload=event.to_dict(),
        apply=apply,
    )
