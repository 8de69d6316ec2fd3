"""Receipts of everything that reached keepwarm (intake submissions and provider webhooks),
unique per provider event, and whether each was routed to its workflow."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlmodel import Session, and_, col, or_, select

from models.database import ROW_LOCK, insert_once
from models.errors import NotFound
from models.tables import (
    IntakeReceipt,
    WebhookReceipt,
)
from models.values import (
    new_id,
)


def record_intake_receipt(
    session: Session, *, org_id: str, event_id: str | None, kind: str, payload: dict[str, Any]
) -> tuple[IntakeReceipt, bool]:
    """Record an intake submission; return it and whether it is new.

    The same ``event_id`` again returns the first receipt and ``False``.
    """
    receipt = IntakeReceipt(
        id=new_id("rcpt"), org_id=org_id, event_id=event_id, kind=kind, payload=payload
    )
    return insert_once(
        session, receipt, IntakeReceipt.org_id == org_id, IntakeReceipt.event_id == event_id
    )


def get_receipt(session: Session, *, org_id: str, receipt_id: str) -> IntakeReceipt:
    receipt = session.get(IntakeReceipt, receipt_id)
    if receipt is None or receipt.org_id != org_id:
        raise NotFound(receipt_id)
    return receipt


#: Where a listing of webhook receipts goes on from: ``(received_at, id)`` of the last one.
ReceiptKey = tuple[datetime, str]


def unrouted_webhooks(
    session: Session,
    *,
    received_before: datetime,
    after: ReceiptKey | None,
    limit: int,
    now: datetime,
    org_ids: Collection[str] | None = None,
) -> list[ReceiptKey]:
    """Webhook receipts not routed yet, received before ``received_before`` and not backing
    off at ``now``, oldest first, from after ``after``: their keys, at most ``limit``; only
    ``org_ids``' if given."""
    query = select(WebhookReceipt.received_at, WebhookReceipt.id).where(
        col(WebhookReceipt.routed_at).is_(None),
        WebhookReceipt.received_at < received_before,
        or_(col(WebhookReceipt.next_route_at).is_(None), col(WebhookReceipt.next_route_at) <= now),
    )
    if org_ids is not None:
        query = query.where(col(WebhookReceipt.org_id).in_(list(org_ids)))
    if after is not None:
        at, receipt_id = after
        query = query.where(
            or_(
                WebhookReceipt.received_at > at,
                and_(WebhookReceipt.received_at == at, col(WebhookReceipt.id) > receipt_id),
            )
        )
    rows = session.exec(
        query.order_by(col(WebhookReceipt.received_at), col(WebhookReceipt.id)).limit(limit)
    )
    return [(at, receipt_id) for at, receipt_id in rows]


def lock_unrouted_webhook(session: Session, *, receipt_id: str) -> WebhookReceipt | None:
    """The webhook receipt, locked until the transaction ends, if it is still unrouted and no
    other transaction holds it (``SKIP LOCKED``: ``None`` at once instead of waiting).
    SQLite has no row locks: there, one process routes."""
    return session.exec(
        select(WebhookReceipt)
        .where(WebhookReceipt.id == receipt_id, col(WebhookReceipt.routed_at).is_(None))
        .with_for_update(skip_locked=True, **ROW_LOCK)
        .execution_options(populate_existing=True)
    ).first()
