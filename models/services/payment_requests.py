"""Payment requests: a lead is asked to pay; its link is created, sent and followed up until
Stripe says paid; a failed payment is followed up too.

The request's row is the truth, as a booking's is: Stripe's signed events and the link's
creation are written here, then its ``PaymentFollowup`` workflow is woken and reads the row
(``payment_request_state``). Each message is claimed against the row as it is at that moment
(``claim_payment_message``): once paid, no reminder is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from models.database import lock
from models.errors import EventIdTaken, LeadClosed, NotFound
from models.ids import payment_workflow_id
from models.payloads import PaymentRequestState
from models.rules.orgs import org_settings
from models.rules.payment_requests import PaymentText, money, payment_text
from models.services.outbound import TransactionalClaim, claim_transactional
from models.store.leads import get_lead
from models.store.orgs import get_org
from models.store.receipts import record_intake_receipt
from models.store.timeline import add_to_timeline
from models.tables import Contact, PaymentRequest
from models.values import Stage, TimelineKind, new_id

OPEN, PAID, UNPAID = "open", "paid", "unpaid"


@dataclass(frozen=True, kw_only=True)
class PaymentRequestMade:
    """A payment request recorded (or found again by its event id)."""

    payment_request_id: str
    workflow_id: str
    url: str | None
    duplicate: bool


def _note(session: Session, row: PaymentRequest, summary: str, **data: Any) -> None:
    add_to_timeline(
        session,
        org_id=row.org_id,
        lead_id=row.lead_id,
        kind=TimelineKind.PAYMENT,
        summary=summary,
        data={"payment_request_id": row.id, **data},
    )


def create_payment_request(
    session: Session,
    *,
    org_id: str,
    lead_id: str,
    event_id: str,
    amount: int,
    currency: str,
    description: str,
    due_at: datetime,
) -> PaymentRequestMade:
    """Record a request that the lead pay ``amount`` (minor units) of ``currency`` by
    ``due_at`` (once per ``event_id``). ``NotFound`` for another org's lead, ``LeadClosed``
    for a lost or opted-out one, ``EventIdTaken`` if the event id named another lead."""
    lead = get_lead(session, org_id=org_id, lead_id=lead_id)
    receipt, new = record_intake_receipt(
        session,
        org_id=org_id,
        event_id=f"payment-request:{event_id}",
        kind="payment_request",
        payload={"amount": amount, "currency": currency, "due_at": due_at.isoformat()},
    )
    if not new:
        found = session.exec(
            select(PaymentRequest).where(PaymentRequest.receipt_id == receipt.id)
        ).first()
        if receipt.lead_id != lead_id or found is None:
            raise EventIdTaken(event_id)
        return PaymentRequestMade(
            payment_request_id=found.id,
            workflow_id=found.workflow_id,
            url=found.url,
            duplicate=True,
        )
    if lead.stage in (Stage.LOST, Stage.OPTED_OUT):
        raise LeadClosed(lead.stage)
    receipt.lead_id = lead_id
    session.add(receipt)
    org = get_org(session, org_id=org_id)
    request_id = new_id("payreq")
    row = PaymentRequest(
        id=request_id,
        org_id=org_id,
        lead_id=lead_id,
        contact_id=lead.contact_id,
        receipt_id=receipt.id,
        workflow_id=payment_workflow_id(org_id, request_id),
        amount=amount,
        currency=currency.lower(),
        description=description,
        due_at=due_at,
        mode=org_settings(org).provider_mode.value,
    )
    session.add(row)
    session.flush()
    _note(
        session,
        row,
        f"Payment requested: {money(amount, row.currency)} for {description}, "
        f"due {due_at:%Y-%m-%d}",
        amount=amount,
        currency=row.currency,
    )
    return PaymentRequestMade(
        payment_request_id=row.id, workflow_id=row.workflow_id, url=None, duplicate=False
    )


def _locked(session: Session, *, org_id: str, request_id: str) -> PaymentRequest:
    """The org's request, locked after its contact (like a booking)."""
    row = session.get(PaymentRequest, request_id)
    if row is None or row.org_id != org_id:
        raise NotFound(request_id)
    lock(session, Contact, row.contact_id)
    locked = lock(session, PaymentRequest, row.id)
    assert locked is not None
    return locked


def link_created(
    session: Session, *, org_id: str, request_id: str, link_id: str, url: str
) -> PaymentRequest:
    """Store the request's payment link (the first one stored stays: a retried creation
    gets the same link back from Stripe's idempotency key anyway)."""
    row = _locked(session, org_id=org_id, request_id=request_id)
    if row.url is None:
        row.stripe_link_id, row.url = link_id, url
        session.add(row)
        session.flush()
        simulated = " (simulated: dry run)" if row.mode != "live" else ""
        _note(session, row, f"Payment link created{simulated}", link_id=link_id)
    return row


def payment_request_state(session: Session, *, org_id: str, request_id: str) -> PaymentRequestState:
    """The request as its workflow acts on it."""
    row = session.get(PaymentRequest, request_id)
    if row is None or row.org_id != org_id:
        raise NotFound(request_id)
    return PaymentRequestState(
        status=row.status,
        created_at=row.created_at,
        due_at=row.due_at,
        url=row.url,
        paid_at=row.paid_at,
        failures=row.failures,
        failed_at=row.failed_at,
    )


def give_up(session: Session, *, org_id: str, request_id: str, now: datetime) -> None:
    """Unpaid after every reminder: the request is closed as ``unpaid`` (a payment after it
    is still recorded, and marks it paid)."""
    row = _locked(session, org_id=org_id, request_id=request_id)
    if row.status == OPEN:
        row.status, row.updated_at = UNPAID, now
        session.add(row)
        _note(session, row, "Payment request closed unpaid after every reminder")


def claim_payment_message(
    session: Session,
    *,
    org_id: str,
    request_id: str,
    kind: PaymentText,
    idempotency_key: str,
    now: datetime,
) -> TransactionalClaim:
    """Claim one payment message (transactional), checked against the request now: once it
    is paid only the thanks goes, and nothing before its link exists. ``Deferred`` while
    quiet hours hold it back."""
    row = _locked(session, org_id=org_id, request_id=request_id)
    why_not = None
    if kind == PaymentText.PAID and row.status != PAID:
        why_not = "not paid"
    elif kind != PaymentText.PAID and row.status == PAID:
        why_not = "already paid"
    elif row.url is None:
        why_not = "no payment link yet"
    claimed = claim_transactional(
        session,
        org_id=org_id,
        lead_id=row.lead_id,
        contact_id=row.contact_id,
        idempotency_key=idempotency_key,
        template=f"payment_{kind.value}",
        why_not=why_not,
        words=lambda zone: payment_text(
            kind,
            amount=row.amount,
            currency=row.currency,
            description=row.description,
            url=row.url or "",
            due_at=row.due_at,
            zone=zone,
        ),
        now=now,
    )
    if claimed.new and claimed.channel is not None:
        _note(session, row, f"Payment message sent by {claimed.channel.value}: {kind.value}")
    return claimed


@dataclass(frozen=True, kw_only=True)
class PaymentRequestSettled:
    """A Stripe event applied to a request: the workflow to wake."""

    payment_request_id: str
    workflow_id: str


def settle_from_stripe(
    session: Session,
    *,
    org_id: str,
    request_id: str | None,
    link_id: str | None,
    paid: bool,
    at: datetime,
) -> PaymentRequestSettled | None:
    """Apply a Stripe event to the request it names (``payment_request_id`` in its metadata,
    or its payment link): paid, or one more failed payment. ``None`` if it names none of
    this org's requests. A payment after the request was given up still marks it paid."""
    found = None
    if request_id:
        found = session.get(PaymentRequest, request_id)
    if found is None and link_id:
        found = session.exec(
            select(PaymentRequest).where(
                PaymentRequest.org_id == org_id, col(PaymentRequest.stripe_link_id) == link_id
            )
        ).first()
    if found is None or found.org_id != org_id:
        return None
    row = _locked(session, org_id=org_id, request_id=found.id)
    if row.status != PAID:
        if paid:
            row.status, row.paid_at = PAID, at
            _note(session, row, f"Paid: {money(row.amount, row.currency)}")
        else:
            row.failures, row.failed_at = row.failures + 1, at
            _note(session, row, f"A payment failed (failure {row.failures})")
        row.updated_at = at
        session.add(row)
        session.flush()
    return PaymentRequestSettled(payment_request_id=row.id, workflow_id=row.workflow_id)
