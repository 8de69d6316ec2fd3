"""The needs-attention queue: things a person must look at, oldest SLA first.

Identity conflicts land here now; escalations (agent flags, call caps, complaints) join them
with the Escalation workflow.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlmodel import Session, col, select

from models.database import insert_once
from models.schemas import OrgSettings
from models.tables import Escalation, Org, utcnow
from models.values import new_id

Priority = Literal["urgent", "high", "medium", "low"]
#: Escalation statuses that keep an item in the queue.
OPEN_STATUSES = ("open", "acknowledged")
#: Why an item is in the queue, for the ones keepwarm opens itself.
IDENTITY_CONFLICT = "identity_conflict"


class EscalationMissing(LookupError):
    """No such escalation in this org."""


def open_escalation(
    session: Session,
    *,
    org_id: str,
    reason: str,
    priority: Priority,
    summary: str,
    lead_id: str | None = None,
    thread_id: str | None = None,
    contact_id: str | None = None,
    dedupe_key: str | None = None,
    data: dict[str, Any] | None = None,
) -> Escalation:
    """Put an item in the queue, due within the org's SLA for ``priority``.

    With ``dedupe_key``, a second item for the same cause returns the first one instead.
    """
    org = session.get(Org, org_id)
    sla = OrgSettings.model_validate(org.settings if org else {}).sla
    now = utcnow()
    row = Escalation(
        id=new_id("esc"),
        org_id=org_id,
        lead_id=lead_id,
        thread_id=thread_id,
        contact_id=contact_id,
        reason=reason,
        priority=priority,
        summary=summary,
        dedupe_key=dedupe_key,
        data=data or {},
        opened_at=now,
        sla_due_at=now + getattr(sla, priority),
    )
    stored, _ = insert_once(
        session, row, Escalation.org_id == org_id, Escalation.dedupe_key == dedupe_key
    )
    return stored


def attention(session: Session, *, org_id: str, limit: int) -> list[Escalation]:
    """The org's unresolved items, the one whose SLA runs out first at the top."""
    return list(
        session.exec(
            select(Escalation)
            .where(Escalation.org_id == org_id, col(Escalation.status).in_(OPEN_STATUSES))
            .order_by(col(Escalation.sla_due_at), col(Escalation.opened_at))
            .limit(limit)
        )
    )


def resolve(
    session: Session, *, org_id: str, escalation_id: str, by: str, resolution: str | None
) -> Escalation:
    """Close an item (idempotent: resolving a resolved item changes nothing)."""
    row = session.get(Escalation, escalation_id, with_for_update=True)
    if row is None or row.org_id != org_id:
        raise EscalationMissing(escalation_id)
    if row.status != "resolved":
        _close(row, by=by, resolution=resolution, at=utcnow())
        session.add(row)
        session.flush()
    return row


def after_merge(
    session: Session,
    *,
    org_id: str,
    keep_id: str,
    other_id: str,
    keep_thread: str | None,
    other_thread: str | None,
) -> int:
    """Move the merged contact's items to the kept one; resolve the identity conflicts the
    merge settled (those between these two contacts only). Returns how many it resolved."""
    rows = session.exec(
        select(Escalation).where(
            Escalation.org_id == org_id, col(Escalation.status).in_(OPEN_STATUSES)
        )
    )
    now, settled = utcnow(), 0
    for row in rows:
        if row.contact_id == other_id:
            row.contact_id = keep_id
        if other_thread is not None and row.thread_id == other_thread:
            row.thread_id = keep_thread
        held_by = set((row.data or {}).get("held_by", {}).values())
        if (
            row.reason == IDENTITY_CONFLICT
            and held_by
            and held_by | {row.contact_id}
            <= {
                keep_id,
                other_id,
            }
        ):
            _close(row, by="merge", resolution=f"contact {other_id} merged into {keep_id}", at=now)
            settled += 1
        session.add(row)
    session.flush()
    return settled


def _close(row: Escalation, *, by: str, resolution: str | None, at: datetime) -> None:
    row.status = "resolved"
    row.resolved_at = at
    row.resolved_by = by
    row.resolution = resolution
