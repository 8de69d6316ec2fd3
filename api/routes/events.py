"""Commerce events: carts started, abandoned or bought."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.deps import DatabaseDep, OrgDep, TemporalDep
from api.errors import invalid
from api.intake import accept_intake
from api.openapi import ORG_KEY, errors
from api.temporal import tell, unavailable
from models.rules.contacts import normalize_phone
from models.rules.orgs import org_settings
from models.rules.sequences import CART_SOURCE
from models.schemas import CartEvent, IntakeAccepted
from workflows.lead import LeadWorkflow, PaymentReceived

router = APIRouter(prefix="/v1/events", tags=["events"], responses=errors(*ORG_KEY))


@router.post("/cart", status_code=status.HTTP_202_ACCEPTED, responses=errors(413, 422))
async def cart_event(
    body: CartEvent, org: OrgDep, database: DatabaseDep, client: TemporalDep
) -> IntakeAccepted:
    """A cart as a lead of the person who owns it (the same contact as their form leads).

    ``started`` and ``abandoned`` run the cart-recovery sequence; ``purchased`` converts the
    person's lead and stops its sequences (a purchase with no open lead is recorded as a lead
    that is never chased).
    """
    region = org_settings(org).default_region
    phone = None
    if body.customer.phone:
        phone = normalize_phone(body.customer.phone, region=region)
        if phone is None:
            raise invalid(
                "customer.phone",
                f"is not a valid phone number (read with default region {region})",
            )
    payload = {
        "email": body.customer.email,
        "phone": phone,
        "name": body.customer.name,
        "source": CART_SOURCE,
        "value": body.value,
        "fields": {"cart_status": body.status, "items": body.items, "url": body.url},
        "consent": {},
    }
    accepted = await accept_intake(
        client=client,
        database=database,
        org=org,
        event_id=f"cart:{body.event_id}",
        source=CART_SOURCE,
        payload=payload,
        kind="cart",
    )
    if body.status == "purchased":
        purchase = PaymentReceived(payment_id=f"cart:{body.event_id}", status="paid")
        recorded = "The purchase is recorded; retry to convert the lead."
        told = await tell(
            client, accepted.workflow_id, LeadWorkflow.payment_received, purchase, message=recorded
        )
        # A lead just started or told of this cart that has already ended closed in between:
        # a retry opens the next one. A repeat's lead may well have ended (this purchase
        # converted it): nothing is left to tell.
        if not told and not accepted.duplicate:
            raise unavailable(recorded)
    return IntakeAccepted(
        lead_id=accepted.lead_id, workflow_id=accepted.workflow_id, duplicate=accepted.duplicate
    )
