"""Merging two contacts into one: identities, consent, leads, messages, the thread and the
queue's items move to the kept contact."""

from __future__ import annotations

from sqlmodel import Session, col, select

from models.database import lock
from models.errors import NotFound, SameContact
from models.rules.escalations import OPEN_STATUSES
from models.store import agent_days
from models.store.escalations import close_escalation
from models.store.leads import open_leads
from models.store.payments import reattribute_payments
from models.store.threads import fold_thread, rank_thread, thread_of_contact
from models.store.timeline import add_to_timeline
from models.tables import (
    Booking,
    ConsentRecord,
    Contact,
    Escalation,
    Identity,
    Lead,
    Message,
    Payment,
    PaymentRequest,
    Thread,
    utcnow,
)
from models.values import (
    EscalationReason,
    TimelineKind,
)


def merge_contacts(session: Session, *, org_id: str, keep_id: str, other_id: str) -> list[str]:
    """Move the other contact's identities, consent, leads and messages onto ``keep_id`` and
    remove it; the workflow ids of the open leads now under ``keep_id``, to tell them."""
    if keep_id == other_id:
        raise SameContact("a contact can't be merged into itself")
    # Both contacts locked, lower id first: two merges of the same pair can't deadlock.
    for contact_id in sorted((keep_id, other_id)):
        lock(session, Contact, contact_id)
    keep = session.get(Contact, keep_id)
    other = session.get(Contact, other_id)
    for contact, wanted in ((keep, keep_id), (other, other_id)):
        if contact is None or contact.org_id != org_id:
            raise NotFound(wanted)
    assert keep is not None and other is not None
    keep_thread = thread_of_contact(session, contact_id=keep.id)
    other_thread = thread_of_contact(session, contact_id=other.id)
    for model in (Identity, ConsentRecord, Lead, Payment, Booking, PaymentRequest):
        for row in session.exec(select(model).where(model.contact_id == other.id)):
            row.contact_id = keep.id
            session.add(row)
    session.flush()
    # The merged contact's first lead may be one of the other's: its revenue follows it.
    reattribute_payments(session, org_id=org_id, contact_id=keep.id)
    if other_thread is not None:
        for message in session.exec(select(Message).where(Message.thread_id == other_thread)):
            message.thread_id = keep_thread
            session.add(message)
    session.flush()
    if other_thread is not None:
        thread = session.get(Thread, other_thread)
        if thread is not None:
            fold_thread(session, keep_id=keep_thread, other=thread)
            session.delete(thread)
    session.flush()
    # The leads now share one thread: a reply or a person's message on it counts for each.
    agent_days.refresh_contact(session, contact_id=keep.id)
    if not keep.name and other.name:
        keep.name = other.name
    keep.timezone = keep.timezone or other.timezone
    session.add(keep)
    session.flush()
    session.delete(other)
    after_merge(
        session,
        org_id=org_id,
        keep_id=keep.id,
        other_id=other.id,
        keep_thread=keep_thread,
        other_thread=other_thread,
    )
    still_open = open_leads(session, org_id=org_id, contact_ids=[keep.id])
    for lead in still_open:
        add_to_timeline(
            session,
            org_id=org_id,
            lead_id=lead.id,
            kind=TimelineKind.CONTACT_MERGED,
            summary=f"Contact {other_id} merged into {keep_id}",
            data={"kept": keep_id, "merged": other_id},
        )
    return [lead.workflow_id for lead in still_open]


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
            row.reason == EscalationReason.IDENTITY_CONFLICT
            and held_by
            and held_by | {row.contact_id}
            <= {
                keep_id,
                other_id,
            }
        ):
            close_escalation(
                row, by="merge", resolution=f"contact {other_id} merged into {keep_id}", at=now
            )
            settled += 1
        session.add(row)
    session.flush()
    rank_thread(session, thread_id=keep_thread)
    return settled
