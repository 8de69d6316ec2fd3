"""Payment requests (API.md "Payments in the journey"): ask a lead to pay through a Stripe
payment link, followed up until Stripe says paid."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, status

from api import actions
from api.deps import DatabaseDep, IdParam, OrgDep, TemporalDep
from api.errors import ApiError, invalid
from api.openapi import ORG_KEY, errors
from api.sessions import ActorDep
from models.errors import EventIdTaken, LeadClosed, NotFound
from models.reads.payment_requests import (
    MAX_REQUESTS,
    payment_request_detail,
    payment_request_list,
)
from models.schemas.payment_requests import (
    PaymentRequestCreated,
    PaymentRequestIn,
    PaymentRequestList,
    PaymentRequestOut,
)
from models.tables import utcnow

router = APIRouter(tags=["payments"], responses=errors(*ORG_KEY))

#: A request without ``due_at`` is due this long after it is made.
DEFAULT_DUE = timedelta(days=7)


@router.post(
    "/v1/leads/{lead_id}/payment-requests",
    status_code=status.HTTP_201_CREATED,
    responses=errors(404, 409, 413, 422, 503),
)
async def request_payment(
    lead_id: IdParam,
    body: PaymentRequestIn,
    actor: ActorDep,
    database: DatabaseDep,
    client: TemporalDep,
) -> PaymentRequestCreated:
    """Ask the lead to pay: a ``PaymentFollowup`` workflow creates the Stripe payment link
    (in ``dry_run`` a simulated one), sends it on a channel the customer allows, reminds a
    day before the due date and after it, follows up a failed payment, and ends when Stripe
    says paid. The same ``event_id`` again is the same request. ``url`` is ``null`` if the
    link took longer than a few seconds: ``GET /v1/payment-requests/{id}`` shows it."""
    now = utcnow()
    due_at = body.due_at or now + DEFAULT_DUE
    if due_at <= now:
        raise invalid("due_at", "is in the past")
    try:
        return await actions.request_payment(
            org_id=actor.org.id,
            lead_id=lead_id,
            event_id=body.event_id,
            amount=body.amount,
            currency=body.currency,
            description=body.description,
            due_at=due_at,
            database=database,
            client=client,
        )
    except NotFound:
        raise ApiError(404, f"No lead {lead_id!r} in this org.") from None
    except LeadClosed as closed:
        raise ApiError(409, f"The lead is {closed.stage}.", code="lead_closed") from None
    except EventIdTaken:
        raise ApiError(
            409, "This event_id was already used for another lead.", code="event_id_taken"
        ) from None


@router.get("/v1/payment-requests", responses=errors(422))
async def list_payment_requests(
    org: OrgDep,
    database: DatabaseDep,
    status: Literal["open", "paid", "unpaid"] | None = None,
    lead_id: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_REQUESTS)] = 100,
) -> PaymentRequestList:
    """The org's payment requests, newest first, by status and lead."""
    return await database.read(
        payment_request_list, org_id=org.id, status=status, lead_id=lead_id, limit=limit
    )


@router.get("/v1/payment-requests/{request_id}", responses=errors(404, 422))
async def one_payment_request(
    request_id: IdParam, org: OrgDep, database: DatabaseDep
) -> PaymentRequestOut:
    """The request and where it stands."""
    try:
        return await database.read(payment_request_detail, org_id=org.id, request_id=request_id)
    except NotFound:
        raise ApiError(404, f"No payment request {request_id!r} in this org.") from None
