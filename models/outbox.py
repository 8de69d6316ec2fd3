"""The live pages' outbox: every change a page shows writes a ``ui_events`` row in its own
transaction, whoever makes it (an API request, an activity in a worker).

Alerts and health verdicts name the ``alert`` subject (the Alerts page, the health strip and
the nav badge re-fetch on it).

One hook on every session's flush, not a call in each service: a new use case can't forget
it. Each flushed message, thread, lead, escalation, call, timeline event, contact, identity
or consent record names the subjects a page shows it under (its thread, lead, contact,
escalation); each subject gets one row per transaction. On PostgreSQL the flush also sends a
``NOTIFY`` on ``UI_CHANNEL``, delivered at commit, so tailers wake at once.

A bulk ``UPDATE`` is not seen by a flush; the ones keepwarm runs (``store.threads.touch_thread``)
go with a message insert, which is.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import event, insert, inspect, text
from sqlalchemy.orm import Session, UOWTransaction

from models.tables import (
    Alert,
    Call,
    ConsentRecord,
    Contact,
    Escalation,
    HealthSample,
    Identity,
    Lead,
    Message,
    Operator,
    Thread,
    TimelineEvent,
    UiEvent,
    utcnow,
)
from models.values import UiEventKind

#: The PostgreSQL notification channel tailers ``LISTEN`` on.
UI_CHANNEL = "keepwarm_ui"
_SEEN = "keepwarm_ui_seen"
_PENDING = "keepwarm_ui_pending"
_INSERT = insert(UiEvent)
#: The subject id of a health verdict's event: one per org per run of the checks.
HEALTH_SUBJECT = "health"

Subject = tuple[str, UiEventKind, str]


def _subjects(row: Any) -> Iterator[tuple[UiEventKind, str | None]]:
    """The (kind, id) pairs a changed row is shown under."""
    if isinstance(row, Message):
        yield UiEventKind.THREAD, row.thread_id
        yield UiEventKind.LEAD, row.lead_id
    elif isinstance(row, Thread):
        yield UiEventKind.THREAD, row.id
        yield UiEventKind.CONTACT, row.contact_id
    elif isinstance(row, Escalation):
        yield UiEventKind.ESCALATION, row.id
        yield UiEventKind.THREAD, row.thread_id
        yield UiEventKind.LEAD, row.lead_id
    elif isinstance(row, Lead):
        yield UiEventKind.LEAD, row.id
        yield UiEventKind.CONTACT, row.contact_id
    elif isinstance(row, Call | TimelineEvent):
        yield UiEventKind.LEAD, row.lead_id
    elif isinstance(row, Contact):
        yield UiEventKind.CONTACT, row.id
    elif isinstance(row, Identity | ConsentRecord):
        yield UiEventKind.CONTACT, row.contact_id
    elif isinstance(row, Alert):
        yield UiEventKind.ALERT, row.id
    elif isinstance(row, HealthSample):
        # Deployment-wide verdicts (no org) reach pages through their 60 s poll.
        yield UiEventKind.ALERT, HEALTH_SUBJECT if row.org_id else None
    elif isinstance(row, Operator):
        # Only a switch of the thread they view ("who else is viewing"): the thread left and
        # the thread opened. A heartbeat alone changes nothing a page shows.
        history = inspect(row).attrs.viewing_thread_id.history
        for thread_id in (*history.deleted, *history.added):
            yield UiEventKind.THREAD, thread_id


def _changed_rows(session: Session) -> Iterator[Any]:
    yield from session.new
    yield from session.deleted
    for row in session.dirty:
        if session.is_modified(row, include_collections=False):
            yield row


def _before_flush(session: Session, _flush: UOWTransaction, _instances: Any) -> None:
    seen: set[Subject] = session.info.setdefault(_SEEN, set())
    pending: list[Subject] = session.info.setdefault(_PENDING, [])
    for row in list(_changed_rows(session)):
        org_id = getattr(row, "org_id", None)
        if org_id is None:
            continue
        for kind, subject_id in _subjects(row):
            if subject_id is None or (org_id, kind, subject_id) in seen:
                continue
            seen.add((org_id, kind, subject_id))
            pending.append((org_id, kind, subject_id))


def _after_flush(session: Session, _flush: UOWTransaction) -> None:
    """The flush's events, in one statement on the flush's connection (rolled back with it),
    and on PostgreSQL the wake-up. Core, not ORM rows: nobody reads them back in the
    transaction, and an ORM row each cost an ``INSERT ... RETURNING`` of its own."""
    pending: list[Subject] = session.info.pop(_PENDING, [])
    if not pending:
        return
    connection = session.connection()
    now = utcnow()
    connection.execute(
        _INSERT,
        [
            {"org_id": org_id, "kind": kind, "subject_id": subject_id, "created_at": now}
            for org_id, kind, subject_id in pending
        ],
    )
    if connection.dialect.name == "postgresql":
        # Delivered at commit (and dropped on rollback); repeats in one transaction fold.
        connection.execute(text(f"NOTIFY {UI_CHANNEL}"))


def _forget(session: Session, *_: Any) -> None:
    session.info.pop(_SEEN, None)
    session.info.pop(_PENDING, None)


def install() -> None:
    """Hook every session (idempotent): ``models.database`` calls it on import."""
    if not event.contains(Session, "before_flush", _before_flush):
        event.listen(Session, "before_flush", _before_flush)
        event.listen(Session, "after_flush", _after_flush)
        event.listen(Session, "after_commit", _forget)
        event.listen(Session, "after_soft_rollback", _forget)
