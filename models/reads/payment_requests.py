"""Payment requests as the API shows them."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, col, select

from models.errors import NotFound
from models.schemas.payment_requests import PaymentRequestList, PaymentRequestOut
from models.tables import Payment, PaymentRequest

#: The most requests one list answers.
MAX_REQUESTS = 500


def _out(row: PaymentRequest) -> PaymentRequestOut:
    return PaymentRequestOut(
        payment_request_id=row.id,
        lead_id=row.lead_id,
        workflow_id=row.workflow_id,
        amount=row.amount,
        currency=row.currency,
        description=row.description,
        due_at=row.due_at,
        status=row.status,
        mode=row.mode,
        url=row.url,
        paid_at=row.paid_at,
        failures=row.failures,
        failed_at=row.failed_at,
        created_at=row.created_at,
    )


def payment_request_list(
    session: Session,
    *,
    org_id: str,
    status: str | None,
    lead_id: str | None,
    limit: int = MAX_REQUESTS,
    contact_id: str | None = None,
) -> PaymentRequestList:
    """The org's requests, newest first, by status, lead and contact (across its leads)."""
    query = select(PaymentRequest).where(PaymentRequest.org_id == org_id)
    if status is not None:
        query = query.where(PaymentRequest.status == status)
    if lead_id is not None:
        query = query.where(PaymentRequest.lead_id == lead_id)
    if contact_id is not None:
        query = query.where(PaymentRequest.contact_id == contact_id)
    rows = session.exec(
        query.order_by(col(PaymentRequest.created_at).desc(), col(PaymentRequest.id)).limit(
            min(limit, MAX_REQUESTS)
        )
    )
    return PaymentRequestList(items=[_out(row) for row in rows])


def payment_request_detail(session: Session, *, org_id: str, request_id: str) -> PaymentRequestOut:
    """The org's request; ``NotFound`` for another org's or none."""
    row = session.get(PaymentRequest, request_id)
    if row is None or row.org_id != org_id:
        raise NotFound(request_id)
    return _out(row)


def usual_currency(session: Session, *, org_id: str) -> str | None:
    """The currency the org usually asks for: the one most of its payment requests are in,
    else the one most of its recorded payments are in (ties: alphabetical); ``None`` with
    neither."""
    for table in (PaymentRequest, Payment):
        count = func.count()
        found = session.exec(
            select(col(table.currency), count)
            .where(table.org_id == org_id, col(table.currency).is_not(None))
            .group_by(col(table.currency))
            .order_by(count.desc(), col(table.currency))
            .limit(1)
        ).first()
        if found is not None:
            return str(found[0]).lower()
    return None
