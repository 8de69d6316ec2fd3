"""Receipts of everything that reached keepwarm (intake submissions and provider webhooks),
unique per provider event, and whether each was routed to its workflow."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from models.database import insert_once
from models.errors import NotFound
from models.tables import (
    IntakeReceipt,
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
