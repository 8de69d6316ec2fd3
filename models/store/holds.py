"""A thread's takeover hold as stored on the thread row: who holds it, until when, and the
leads it pauses."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session, select

from models.errors import ThreadMissing
from models.rules.takeover import LEADS_TOLD, MIN_HOLD_WAIT, Hold, releases_at
from models.schemas import OrgSettings
from models.store.leads import open_leads
from models.store.orgs import settings_for
from models.store.threads import lock_thread
from models.tables import Lead, Thread


def held_until(
    session: Session, *, contact_id: str, settings: OrgSettings, now: datetime
) -> datetime | None:
    """Until when automation must wait for the contact (``None``: nobody holds their
    thread). Past its time, a hold still counts until its workflow releases it."""
    thread = session.exec(select(Thread).where(Thread.contact_id == contact_id)).first()
    if thread is None:
        return None
    until = releases_at(thread, settings.takeover_timeout)
    if until is None:
        return None
    return max(until, now + MIN_HOLD_WAIT)


def locked_thread(session: Session, *, org_id: str, thread_id: str) -> Thread:
    """The org's thread, locked after its contact (``store.threads.lock_thread``)."""
    thread = session.get(Thread, thread_id)
    if thread is None or thread.org_id != org_id:
        raise ThreadMissing(thread_id)
    locked = lock_thread(session, thread_id=thread_id)
    assert locked is not None
    return locked


def leads_of_contact(session: Session, *, org_id: str, contact_id: str) -> list[Lead]:
    """The contact's open leads a hold pauses and a release wakes (the newest few)."""
    return open_leads(session, org_id=org_id, contact_ids=[contact_id], limit=LEADS_TOLD)


def hold_state(
    session: Session,
    thread: Thread,
    *,
    settings: OrgSettings,
    leads: Sequence[Lead] | None = None,
    changed: bool = False,
    acknowledged: Sequence[str] = (),
) -> Hold:
    if leads is None:
        leads = leads_of_contact(session, org_id=thread.org_id, contact_id=thread.contact_id)
    return Hold(
        thread_id=thread.id,
        held_by=thread.held_by,
        held_since=thread.held_since,
        releases_at=releases_at(thread, settings.takeover_timeout),
        lead_workflows=[lead.workflow_id for lead in leads],
        acknowledged=list(acknowledged),
        changed=changed,
    )


def read_hold(session: Session, *, org_id: str, thread_id: str) -> Hold:
    """The thread's takeover state."""
    thread = session.get(Thread, thread_id)
    if thread is None or thread.org_id != org_id:
        raise ThreadMissing(thread_id)
    return hold_state(session, thread, settings=settings_for(session, org_id=org_id))
