"""A payment request's steps that are not messages: its payment link (Stripe's, or simulated
in dry run), its state for the workflow, and closing it unpaid."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from temporalio import activity

from activities.errors import ProviderNotConfigured, RecordMissing
from activities.payments import PaymentLinks
from activities.records import record
from models.database import session_scope
from models.payloads import PaymentRequestState
from models.services.payment_requests import give_up, link_created, payment_request_state
from models.tables import PaymentRequest
from models.values import ProviderMode


@dataclass(frozen=True, kw_only=True)
class PaymentRequestInput:
    """One payment request of an org."""

    org_id: str
    request_id: str


@dataclass(frozen=True, kw_only=True)
class GiveUpInput:
    """Close a request unpaid, at the workflow's time."""

    org_id: str
    request_id: str
    now: datetime


class PaymentRequestActivities:
    """Creates payment links and reads and closes payment requests."""

    def __init__(self, *, engine: Engine, links: Mapping[ProviderMode, PaymentLinks]) -> None:
        """Record in ``engine``; create links with ``links`` per the request's mode."""
        self._engine = engine
        self._links = links

    @activity.defn(name="create_payment_link")
    def create_payment_link(self, input: PaymentRequestInput) -> str:
        """The request's payment link, created once: Stripe's idempotency key is the
        request's (``payment-link/{request}``), so an attempt retried after a crash gets the
        first link back, and a link already stored is returned without a call."""
        with session_scope(self._engine) as session:
            row = session.get(PaymentRequest, input.request_id)
            if row is None or row.org_id != input.org_id:
                raise RecordMissing(f"no such record: payment request {input.request_id}")
            if row.url is not None:
                return row.url
            mode, lead_id = ProviderMode(row.mode), row.lead_id
            amount, currency, description = row.amount, row.currency, row.description
        links = self._links.get(mode)
        if links is None:
            raise ProviderNotConfigured("live payments need STRIPE_API_KEY")
        link = links.create_amount_link(
            amount=amount,
            currency=currency,
            description=description,
            metadata={"lead_id": lead_id, "payment_request_id": input.request_id},
            idempotency_key=f"payment-link/{input.request_id}",
        )
        stored = record(
            self._engine,
            link_created,
            org_id=input.org_id,
            request_id=input.request_id,
            link_id=link.id,
            url=link.url,
        )
        assert stored.url is not None
        return stored.url

    @activity.defn(name="payment_request_state")
    def payment_request_state(self, input: PaymentRequestInput) -> PaymentRequestState:
        """The request as it stands."""
        return record(
            self._engine,
            payment_request_state,
            org_id=input.org_id,
            request_id=input.request_id,
        )

    @activity.defn(name="give_up_payment_request")
    def give_up_payment_request(self, input: GiveUpInput) -> None:
        """Close the request unpaid (if it still is)."""
        record(
            self._engine, give_up, org_id=input.org_id, request_id=input.request_id, now=input.now
        )
