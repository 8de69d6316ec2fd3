"""The thread pane of the operators' inbox: the conversation (latest messages first loaded,
earlier ones a page at a time), who wrote what, the calls, the lead, and what a reply would
meet (consent, quiet hours) before it is written."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import literal
from sqlmodel import Session, col, select, tuple_

from models.errors import NotFound
from models.reads.inbox import thread_view
from models.reads.leads import lead_calls
from models.reads.operators import operator_names
from models.reads.paging import decode_cursor, encode_cursor
from models.schemas import CallPublic, ThreadDetail, ThreadMessage
from models.services.replies import ReplyOutlook, reply_outlook
from models.store.leads import newest_lead
from models.tables import Lead, Message, Thread, UtcDateTime

#: Messages the pane shows at first, and per "earlier messages" page.
PANE_MESSAGES = 50


@dataclass(frozen=True)
class ThreadPane:
    """Everything the thread pane shows."""

    detail: ThreadDetail
    #: Operator names by id (holders, human messages' authors), removed ones included.
    operators: dict[str, str]
    lead: Lead | None
    calls: list[CallPublic]
    outlook: ReplyOutlook
    #: The cursor of the page before the first message shown, if there are earlier ones.
    earlier: str | None


def _cursor(messages: list[ThreadMessage]) -> str | None:
    first = messages[0] if messages else None
    return encode_cursor([first.created_at, first.id]) if first else None


def thread_pane(
    session: Session, *, org_id: str, thread_id: str, now: datetime, limit: int = PANE_MESSAGES
) -> ThreadPane:
    """The pane for the org's thread; ``NotFound`` for another org's or none."""
    detail = thread_view(session, org_id=org_id, thread_id=thread_id, limit=limit)
    thread = session.get(Thread, thread_id)
    assert thread is not None
    lead = newest_lead(session, org_id=org_id, contact_id=thread.contact_id)
    return ThreadPane(
        detail=detail,
        operators=operator_names(session, org_id=org_id),
        lead=lead,
        calls=lead_calls(session, org_id=org_id, lead_id=lead.id) if lead else [],
        outlook=reply_outlook(session, thread=thread, now=now),
        earlier=_cursor(detail.messages) if detail.earlier_messages else None,
    )


def earlier_messages(
    session: Session, *, org_id: str, thread_id: str, before: str, limit: int = PANE_MESSAGES
) -> tuple[list[ThreadMessage], str | None]:
    """The ``limit`` messages before cursor ``before`` (oldest first) and the cursor of the
    page before them; ``NotFound`` for another org's thread, ``InvalidCursor`` for a cursor
    this pane did not write."""
    thread = session.get(Thread, thread_id)
    if thread is None or thread.org_id != org_id:
        raise NotFound(thread_id)
    at, message_id = decode_cursor(before, kinds=("time", "id"))
    key = tuple_(col(Message.created_at), col(Message.id))
    rows = session.exec(
        select(Message)
        .where(col(Message.org_id) == org_id, col(Message.thread_id) == thread_id)
        .where(key < tuple_(literal(at, type_=UtcDateTime()), literal(message_id)))
        .order_by(col(Message.created_at).desc(), col(Message.id).desc())
        .limit(limit + 1)
    ).all()
    page = [ThreadMessage.model_validate(row, from_attributes=True) for row in rows[:limit]]
    page.reverse()
    return page, _cursor(page) if len(rows) > limit else None
