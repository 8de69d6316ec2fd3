"""The unified inbox: thread lists with filters, word and phone search, sorts and keyset
pages, and one thread's view (its contact, messages and open escalations)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import phonenumbers
from sqlalchemy import ColumnElement, case, func, literal, or_, text, tuple_, type_coerce
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from models.errors import NotFound
from models.reads.paging import CursorKind, decode_cursor, encode_cursor, like_pattern
from models.rules.escalations import OPEN_STATUSES, PRIORITIES
from models.rules.takeover import releases_at
from models.schemas import (
    LastMessage,
    ThreadContact,
    ThreadDetail,
    ThreadEscalation,
    ThreadMessage,
    ThreadPriority,
    ThreadSort,
    ThreadSummary,
)
from models.store.contacts import identities_of, lifetime_values
from models.store.orgs import settings_for
from models.tables import (
    Contact,
    Escalation,
    Identity,
    Message,
    Thread,
    UtcDateTime,
)
from models.values import (
    Channel,
    HandledBy,
    IdentityKind,
    ThreadStatus,
)

#: Characters of a thread's last message shown in the inbox list.
PREVIEW_CHARS = 200


#: The most messages a thread view shows (its latest).
THREAD_MESSAGES_MAX = 500


#: ``sort=priority``: urgent first.
_PRIORITY_RANK = {priority.value: rank for rank, priority in enumerate(PRIORITIES)}


#: ``sort=oldest_unread`` puts threads without an inbound message after those with one.
_NEVER = datetime(9999, 12, 31, tzinfo=UTC)


#: What a cursor of each sort holds, key by key.
_THREAD_CURSOR_KINDS: dict[str, tuple[CursorKind, ...]] = {
    "recent": ("time", "id"),
    "oldest_unread": ("rank", "time", "id"),
    "priority": ("rank", "time", "id"),
    "value": ("number", "time", "id"),
}


#: Text that may be a phone number, to search phones however they were typed.
_PHONE_LIKE = re.compile(r"[\d\s()+.-]+")


def _thread_keys(sort: ThreadSort, lifetime: Any) -> tuple[bool, list[Any]]:
    """Whether ``sort`` is descending, and its key expressions, the id last (ties)."""
    # A thread with no message yet sorts by when it was opened (``tables.THREAD_ACTIVITY``,
    # which ``ix_threads_org_activity`` indexes: ``recent`` pages are read off that index).
    activity = type_coerce(
        func.coalesce(col(Thread.last_message_at), col(Thread.created_at)), UtcDateTime()
    )
    if sort == "oldest_unread":
        unread_first = case((col(Thread.status) == ThreadStatus.UNREAD, 0), else_=1)
        waiting_since = type_coerce(
            func.coalesce(col(Thread.last_inbound_at), literal(_NEVER, type_=UtcDateTime())),
            UtcDateTime(),
        )
        return False, [unread_first, waiting_since, col(Thread.id)]
    if sort == "priority":
        rank = case(_PRIORITY_RANK, value=col(Thread.priority), else_=0)
        return True, [rank, activity, col(Thread.id)]
    if sort == "value":
        return True, [func.coalesce(lifetime.c.value, 0.0), activity, col(Thread.id)]
    return True, [activity, col(Thread.id)]


def _searched_phone(q: str, region: str) -> str | None:
    """``q`` read as a phone number in ``region``, in E.164; ``None`` if it can't be one.

    Looser than ``normalize_phone``: a number only has to be possible, not in service, to be
    searched for (a fictional or newly allocated range is still what the person typed).
    """
    try:
        parsed = phonenumbers.parse(q, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


#: ``work_mem`` for a search's transaction on PostgreSQL: the matches a search may hash, about
#: 4,000 messages. More, and each thread is probed on its own index, newest first, until the
#: page is full: what a common word wants (it fills a page within a few hundred threads).
#: Fewer, and the hash is cheap: what a rare word wants (probing would walk every thread).
SEARCH_WORK_MEM = "256kB"


def _thread_search(org_id: str, q: str, region: str | None) -> ColumnElement[bool]:
    """Threads whose contact's name, email or phone, or any message, contains ``q``.

    Case-insensitive substring search (``ILIKE``), which the trigram indexes serve on
    PostgreSQL. Text that looks like a phone number finds the number however it was typed:
    by its digits (``7700 900123``), or whole as read in the org's region (``07700 900123``
    finds ``+447700900123``).

    Each source is a correlated ``EXISTS``, not ``IN (subquery)``: under ``OR`` PostgreSQL
    can only filter with them. An ``IN`` whose matches outgrow ``work_mem`` was rescanned
    in full for every thread (text in a few hundred thousand messages, or a one- or
    two-letter search: seconds, up to 20 s at a million messages); an ``EXISTS`` is then
    probed per thread on the thread's own index, newest threads first, and stops at the
    page. While the matches fit in memory the planner hashes them; ``list_threads`` keeps
    that memory small (``SEARCH_WORK_MEM``), so only a rare word's matches are hashed.
    """
    pattern = like_pattern(q)
    digits = re.sub(r"\D", "", q)
    if _PHONE_LIKE.fullmatch(q) and len(digits) >= 3:
        phone = _searched_phone(q, region) if region else None
        # Digits have no case: LIKE, which scans several times faster than ILIKE.
        identity = or_(
            col(Identity.value).like(f"%{digits}%"),
            *([col(Identity.value) == phone] if phone else []),
        )
    else:
        identity = col(Identity.value).ilike(pattern, escape="\\")
    return or_(
        sa_select(col(Contact.id))
        .where(
            col(Contact.id) == col(Thread.contact_id),
            col(Contact.org_id) == org_id,
            col(Contact.name).ilike(pattern, escape="\\"),
        )
        .exists(),
        sa_select(col(Identity.id))
        .where(
            col(Identity.contact_id) == col(Thread.contact_id),
            col(Identity.org_id) == org_id,
            identity,
        )
        .exists(),
        sa_select(col(Message.id))
        .where(
            col(Message.thread_id) == col(Thread.id),
            col(Message.org_id) == org_id,
            col(Message.body).ilike(pattern, escape="\\"),
        )
        .exists(),
    )


def list_threads(
    session: Session,
    *,
    org_id: str,
    channel: Channel | None = None,
    status: ThreadStatus | None = None,
    handled_by: HandledBy | None = None,
    priority: ThreadPriority | None = None,
    q: str | None = None,
    region: str | None = None,
    sort: ThreadSort = "recent",
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[ThreadSummary], str | None]:
    """A page of the org's inbox and the cursor of the next page (keyset pagination).

    ``channel``: threads with a message on it. ``q``: see ``_thread_search`` (``region``
    reads a phone number typed without its country code).
    """
    lifetime = lifetime_values(org_id).subquery("lifetime") if sort == "value" else None
    descending, keys = _thread_keys(sort, lifetime)
    # Contacts are not joined: names come for the page only, so a page costs the sort alone.
    statement = sa_select(Thread, *keys).where(col(Thread.org_id) == org_id)
    if lifetime is not None:
        statement = statement.outerjoin(lifetime, lifetime.c.contact_id == col(Thread.contact_id))
    for column, value in (
        (Thread.status, status),
        (Thread.handled_by, handled_by),
        (Thread.priority, priority),
    ):
        if value is not None:
            statement = statement.where(col(column) == value)
    if channel is not None:
        statement = statement.where(
            sa_select(col(Message.id))
            .where(col(Message.thread_id) == col(Thread.id), col(Message.channel) == channel)
            .exists()
        )
    if q and q.strip():
        statement = statement.where(_thread_search(org_id, q.strip(), region))
        if session.get_bind().dialect.name == "postgresql":
            # A word in a tenth of the messages: hashing its 100,000 matches took 290 ms,
            # probing the newest threads until a page is found takes 2 (``_thread_search``).
            session.execute(text(f"SET LOCAL work_mem = '{SEARCH_WORK_MEM}'"))
    if cursor:
        values = decode_cursor(cursor, kinds=_THREAD_CURSOR_KINDS[sort])
        bound = tuple_(
            *(literal(value, type_=key.type) for key, value in zip(keys, values, strict=True))
        )
        statement = statement.where(tuple_(*keys) < bound if descending else tuple_(*keys) > bound)
    order = [key.desc() if descending else key.asc() for key in keys]
    rows = session.execute(statement.order_by(*order).limit(limit + 1)).all()
    items = _thread_summaries(session, org_id=org_id, threads=[row[0] for row in rows[:limit]])
    next_cursor = encode_cursor(list(rows[limit - 1][1:])) if len(rows) > limit else None
    return items, next_cursor


def _thread_summaries(
    session: Session, *, org_id: str, threads: list[Thread]
) -> list[ThreadSummary]:
    """Inbox entries for ``threads``: a handful of queries for the whole page, each on an
    index, none per thread."""
    ids = [thread.id for thread in threads]
    if not ids:
        return []
    contact_ids = sorted({thread.contact_id for thread in threads})
    names = _contact_names(session, org_id=org_id, contact_ids=contact_ids)
    channels = _thread_channels(session, ids=ids)
    last = _last_messages(session, ids=ids)
    escalations = _open_escalation_counts(session, org_id=org_id, ids=ids)
    values: dict[str, float | None] = {
        contact_id: value
        for contact_id, value in session.execute(lifetime_values(org_id, contact_ids))
    }
    return [
        ThreadSummary.model_validate(
            {
                "thread_id": thread.id,
                "contact_id": thread.contact_id,
                "name": names.get(thread.contact_id),
                "status": thread.status,
                "handled_by": thread.handled_by,
                "priority": thread.priority,
                "assigned_to": thread.assigned_to,
                "channels": [c for c in Channel if c.value in channels.get(thread.id, ())],
                "last_message": last.get(thread.id),
                "last_message_at": thread.last_message_at,
                "unread": thread.status == ThreadStatus.UNREAD,
                "value": values.get(thread.contact_id) or 0.0,
                "held_by": thread.held_by,
                "held_since": thread.held_since,
                "open_escalations": escalations.get(thread.id, 0),
            }
        )
        for thread in threads
    ]


def _contact_names(
    session: Session, *, org_id: str, contact_ids: list[str]
) -> dict[str, str | None]:
    """The contacts' names, by contact id."""
    return {
        contact_id: name
        for contact_id, name in session.execute(
            sa_select(col(Contact.id), col(Contact.name)).where(
                col(Contact.org_id) == org_id, col(Contact.id).in_(contact_ids)
            )
        )
    }


def _thread_channels(session: Session, *, ids: list[str]) -> dict[str, set[str]]:
    """The channels each thread has a message on, by thread id."""
    channels: dict[str, set[str]] = {}
    for thread_of, channel_of in session.execute(
        sa_select(col(Message.thread_id), col(Message.channel))
        .where(col(Message.thread_id).in_(ids))
        .distinct()
    ):
        channels.setdefault(thread_of, set()).add(channel_of)
    return channels


def _last_messages(session: Session, *, ids: list[str]) -> dict[str, LastMessage]:
    """Each thread's latest message, its body cut to a preview, by thread id."""
    latest = (
        sa_select(col(Message.id))
        .where(col(Message.thread_id) == col(Thread.id))
        .order_by(col(Message.created_at).desc(), col(Message.id).desc())
        .limit(1)
        .correlate(Thread)
        .scalar_subquery()
    )
    last: dict[str, LastMessage] = {}
    for thread_of, channel_of, direction, created_at, preview in session.execute(
        sa_select(
            col(Message.thread_id),
            col(Message.channel),
            col(Message.direction),
            col(Message.created_at),
            func.substr(col(Message.body), 1, PREVIEW_CHARS + 1),
        ).where(
            col(Message.id).in_(
                sa_select(latest).select_from(Thread).where(col(Thread.id).in_(ids))
            )
        )
    ):
        if len(preview) > PREVIEW_CHARS:
            preview = preview[: PREVIEW_CHARS - 1] + "…"
        last[thread_of] = LastMessage(
            body=preview, channel=channel_of, direction=direction, created_at=created_at
        )
    return last


def _open_escalation_counts(
    session: Session, *, org_id: str, ids: list[str]
) -> dict[str | None, int]:
    """How many unresolved escalations each thread has, by thread id (threads with none are
    absent)."""
    open_escalations = sa_select(col(Escalation.thread_id), func.count()).where(
        col(Escalation.org_id) == org_id,
        col(Escalation.thread_id).in_(ids),
        col(Escalation.status).in_(OPEN_STATUSES),
    )
    return {
        thread_of: count
        for thread_of, count in session.execute(
            open_escalations.group_by(col(Escalation.thread_id))
        )
    }


def thread_view(
    session: Session, *, org_id: str, thread_id: str, limit: int = THREAD_MESSAGES_MAX
) -> ThreadDetail:
    """A thread with its contact, its latest ``limit`` messages (oldest first) and its
    unresolved escalations; ``NotFound`` if the org has no such thread."""
    thread = session.get(Thread, thread_id)
    if thread is None or thread.org_id != org_id:
        raise NotFound(thread_id)
    [summary] = _thread_summaries(session, org_id=org_id, threads=[thread])
    identities = identities_of(session, org_id=org_id, contact_id=thread.contact_id)
    mine = (col(Message.org_id) == org_id, col(Message.thread_id) == thread_id)
    latest = session.exec(
        select(Message)
        .where(*mine)
        .order_by(col(Message.created_at).desc(), col(Message.id).desc())
        .limit(limit)
    ).all()
    total = session.exec(select(func.count()).select_from(Message).where(*mine)).one()
    escalations = session.exec(
        select(Escalation)
        .where(
            Escalation.org_id == org_id,
            Escalation.thread_id == thread_id,
            col(Escalation.status).in_(OPEN_STATUSES),
        )
        .order_by(col(Escalation.sla_due_at), col(Escalation.opened_at))
    )
    return ThreadDetail(
        **summary.model_dump(),
        contact=ThreadContact(
            id=thread.contact_id,
            name=summary.name,
            emails=[i.value for i in identities if i.kind == IdentityKind.EMAIL],
            phones=[i.value for i in identities if i.kind == IdentityKind.PHONE],
        ),
        messages=[
            ThreadMessage.model_validate(message, from_attributes=True)
            for message in reversed(latest)
        ],
        earlier_messages=total - len(latest),
        escalations=[
            ThreadEscalation(
                escalation_id=row.id,
                reason=row.reason,
                priority=row.priority,
                summary=row.summary,
                status=row.status,
                level=row.level,
                opened_at=row.opened_at,
                sla_due_at=row.sla_due_at,
            )
            for row in escalations
        ],
        releases_at=releases_at(thread, settings_for(session, org_id=org_id).takeover_timeout),
    )


def unread_counts(session: Session, *, org_id: str) -> dict[str, int]:
    """How many of the org's threads are in each status (``unread``, ``assigned``,
    ``resolved``), off the status index."""
    rows = session.execute(
        sa_select(col(Thread.status), func.count())
        .where(col(Thread.org_id) == org_id)
        .group_by(col(Thread.status))
    ).all()
    return {str(status): int(count) for status, count in rows}
