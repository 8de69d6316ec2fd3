"""Payment requests as the API takes and gives them (API.md "Payments in the journey")."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from models.schemas.fields import DateTime, StrictModel, Text


class PaymentRequestIn(StrictModel):
    """``POST /v1/leads/{lead_id}/payment-requests``: ask the lead to pay (``due_at``, if
    given, in the future; default a week from now)."""

    #: The dedupe key: the same request again changes nothing.
    event_id: Text = Field(min_length=1, max_length=150)
    #: In the currency's smallest unit (cents): 12050 is $120.50.
    amount: int = Field(ge=1, le=99_999_999)
    #: ISO 4217, as Stripe takes it (``usd``, ``gbp``, ``eur``).
    currency: str = Field(pattern=r"^[A-Za-z]{3}$")
    #: What it is for, in the customer's messages and on Stripe's page.
    description: Text = Field(min_length=1, max_length=200)
    due_at: DateTime | None = None


class PaymentRequestCreated(BaseModel):
    """``201``: the request, its workflow and its link (``null`` if not created yet)."""

    payment_request_id: str
    workflow_id: str
    url: str | None
    duplicate: bool


class PaymentRequestOut(BaseModel):
    """A payment request and where it stands."""

    payment_request_id: str
    lead_id: str
    workflow_id: str
    amount: int
    currency: str
    description: str
    due_at: datetime
    #: ``open``, ``paid`` or ``unpaid`` (given up after every reminder).
    status: str
    #: ``dry_run`` (a simulated link, nothing charged) or ``live``.
    mode: str
    url: str | None
    paid_at: datetime | None
    failures: int
    failed_at: datetime | None
    created_at: datetime


class PaymentRequestList(BaseModel):
    """``GET /v1/payment-requests``: newest first."""

    items: list[PaymentRequestOut]
