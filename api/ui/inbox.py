"""The inbox: threads across channels (filters, search, sorts and the page all in the query
string), the thread pane beside them, and taking over, replying and releasing from it.

Every fragment is the page's own block through the same authorization as the page: another
org's thread is 404 on the page and on every fragment.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from api import actions
from api.deps import DatabaseDep, IdParam, QueryText, TemporalConnectionDep
from api.errors import ApiError
from api.sessions import OperatorSessionDep
from api.ui.render import page
from models.errors import (
    InvalidCursor,
    NoAddress,
    NotFound,
    OperatorMissing,
    ReplyRefused,
    ThreadHeld,
    ThreadMissing,
)
from models.reads import inbox as inbox_reads
from models.reads.conversation import earlier_messages, thread_pane
from models.reads.inbox import unread_counts
from models.reads.operators import operator_names, viewers
from models.rules.orgs import org_settings
from models.schemas import ThreadPriority, ThreadSort
from models.services import operators as operator_service
from models.services.sign_in import Current
from models.tables import utcnow
from models.values import Channel, HandledBy, ThreadStatus

router = APIRouter(prefix="/app", include_in_schema=False)

PAGE_SIZE = 30
CHANNEL_NAMES = {"sms": "SMS", "whatsapp": "WhatsApp", "email": "Email", "voice": "Voice"}
STATUS_NAMES = {
    "pending": "Sending",
    "scheduled": "Scheduled",
    "sent": "Sent",
    "delivered": "Delivered",
    "read": "Read",
    "failed": "Failed",
    "undelivered": "Not delivered",
    "simulated": "Simulated (dry run)",
    "blocked": "Blocked",
    "received": "Received",
}
COMMON: dict[str, Any] = {"channel_names": CHANNEL_NAMES, "status_names": STATUS_NAMES}


def _none_if_blank(value: str | None) -> str | None:
    return value or None


class Filters:
    """The inbox's query string, validated (a bad value is a 422, like the JSON API)."""

    def __init__(
        self,
        channel: Annotated[Channel | None, Query()] = None,
        status: Annotated[ThreadStatus | None, Query()] = None,
        handled_by: Annotated[HandledBy | None, Query()] = None,
        priority: Annotated[ThreadPriority | None, Query()] = None,
        q: QueryText = None,
        sort: ThreadSort = "recent",
        cursor: Annotated[str | None, Query(max_length=500)] = None,
    ) -> None:
        """The filters from the query string."""
        self.channel, self.status, self.handled_by, self.priority = (
            channel,
            status,
            handled_by,
            priority,
        )
        self.q, self.sort, self.cursor = (q or "").strip() or None, sort, cursor

    @property
    def any(self) -> bool:
        """Whether anything narrows the list."""
        return any((self.channel, self.status, self.handled_by, self.priority, self.q))

    def query(self, *, with_cursor: bool) -> str:
        """The filters as a query string (empty values left out)."""
        values: dict[str, Any] = {
            "q": self.q,
            "status": self.status,
            "channel": self.channel,
            "handled_by": self.handled_by,
            "priority": self.priority,
            "sort": None if self.sort == "recent" else self.sort,
            "cursor": self.cursor if with_cursor else None,
        }
        return urlencode({k: str(v) for k, v in values.items() if v})


async def _list_context(me: Current, database: DatabaseDep, filters: Filters) -> dict[str, Any]:
    try:
        items, next_cursor = await database.read(
            inbox_reads.list_threads,
            org_id=me.org.id,
            channel=filters.channel,
            status=filters.status,
            handled_by=filters.handled_by,
            priority=filters.priority,
            q=filters.q,
            region=org_settings(me.org).default_region,
            sort=filters.sort,
            limit=PAGE_SIZE,
            cursor=filters.cursor,
        )
    except InvalidCursor:
        raise ApiError(
            422, "This page link is no longer valid; start from the newest threads."
        ) from None
    counts = await database.read(unread_counts, org_id=me.org.id)
    operators = await database.read(operator_names, org_id=me.org.id)
    return {
        "items": items,
        "next_cursor": next_cursor,
        "cursor": filters.cursor,
        "filters": filters,
        "counts": counts,
        "unread_total": counts.get("unread", 0),
        "operators": operators,
        "list_query": filters.query(with_cursor=True),
        "base_query": filters.query(with_cursor=False),
    }


async def _pane_context(me: Current, database: DatabaseDep, thread_id: str) -> dict[str, Any]:
    now = utcnow()
    # Taken before the read, never after: a read that began before a change but finished
    # after an answer that saw the change must not look newer than that answer.
    rendered = time.time_ns() // 1000
    try:
        pane = await database.read(thread_pane, org_id=me.org.id, thread_id=thread_id, now=now)
    except NotFound:
        raise ApiError(404, "No such thread.") from None
    others = await database.read(
        viewers, org_id=me.org.id, thread_id=thread_id, now=now, besides=me.operator.id
    )
    return {
        "pane": pane,
        "now": now,
        # Microseconds of the read: the page drops a pane older than the one it shows (an
        # action's answer that arrives after a live refresh read later).
        "rendered": rendered,
        "reply_key": uuid.uuid4().hex,
        "thread_id": thread_id,
        "viewers": others,
    }


@router.get("/inbox")
async def inbox(
    request: Request,
    me: OperatorSessionDep,
    database: DatabaseDep,
    filters: Annotated[Filters, Depends()],
    thread: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """The inbox page, with the selected thread's conversation beside the list."""
    context = await _list_context(me, database, filters)
    pane = await _pane_context(me, database, thread) if thread else {"pane": None}
    return page(
        request,
        "inbox.html",
        me=me,
        title="Inbox",
        section="inbox",
        selected=thread,
        **COMMON,
        **context,
        **pane,
    )


@router.get("/inbox/list")
async def inbox_list(
    request: Request,
    me: OperatorSessionDep,
    database: DatabaseDep,
    filters: Annotated[Filters, Depends()],
    thread: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """The thread list alone (a live region re-fetches it)."""
    context = await _list_context(me, database, filters)
    return page(
        request, "inbox.html", me=me, block="thread_list", selected=thread, **COMMON, **context
    )


@router.get("/fragments/unread")
async def unread_badge(request: Request, me: OperatorSessionDep, database: DatabaseDep) -> Response:
    """The unread count beside "Inbox" in the navigation (and the tab title)."""
    counts = await database.read(unread_counts, org_id=me.org.id)
    return page(request, "_unread.html", me=me, unread_total=counts.get("unread", 0))


async def _pane(
    request: Request,
    me: Current,
    database: DatabaseDep,
    thread_id: str,
    *,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    context = await _pane_context(me, database, thread_id)
    return page(
        request,
        "inbox.html",
        me=me,
        block="thread_pane",
        oob=True,
        status_code=status_code,
        **COMMON,
        **context,
        **extra,
    )


@router.get("/inbox/threads/{thread_id}")
async def thread_fragment(
    request: Request, thread_id: IdParam, me: OperatorSessionDep, database: DatabaseDep
) -> Response:
    """One thread's pane."""
    return await _pane(request, me, database, thread_id)


@router.get("/inbox/threads/{thread_id}/earlier")
async def earlier(
    request: Request,
    thread_id: IdParam,
    me: OperatorSessionDep,
    database: DatabaseDep,
    before: Annotated[str, Query(max_length=500)],
) -> Response:
    """The page of messages before ``before``, with the button for the page before it."""
    try:
        messages, cursor = await database.read(
            earlier_messages, org_id=me.org.id, thread_id=thread_id, before=before
        )
    except NotFound:
        raise ApiError(404, "No such thread.") from None
    except InvalidCursor:
        raise ApiError(422, "This link is no longer valid; reload the thread.") from None
    operators = await database.read(operator_names, org_id=me.org.id)
    return page(
        request,
        "earlier.html",
        me=me,
        messages=messages,
        before=cursor,
        thread_id=thread_id,
        pane={"operators": operators},
        **COMMON,
    )


@router.post("/inbox/threads/{thread_id}/viewing")
async def viewing(thread_id: IdParam, me: OperatorSessionDep, database: DatabaseDep) -> Response:
    """This operator's inbox shows the thread (every 30 s while it does): others see them."""
    try:
        await database.run(
            operator_service.viewing,
            org_id=me.org.id,
            operator_id=me.operator.id,
            thread_id=thread_id,
            now=utcnow(),
        )
    except NotFound:
        raise ApiError(404, "No such thread.") from None
    return Response(status_code=204)


def _why(error: Exception) -> str:
    if isinstance(error, ThreadHeld | NoAddress | ReplyRefused):
        return str(error)
    if isinstance(error, OperatorMissing):
        return "Your account can't act here any more; sign in again."
    raise error


@router.post("/inbox/threads/{thread_id}/reply")
async def reply(
    request: Request,
    thread_id: IdParam,
    me: OperatorSessionDep,
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
    body: Annotated[str, Form(max_length=1600)],
    idempotency_key: Annotated[str | None, Form(max_length=100)] = None,
) -> Response:
    """Send the operator's reply on the thread's channel, through the compliance gate."""
    if not body.strip():
        return await _pane(
            request, me, database, thread_id, status_code=422, error="Write a message first."
        )
    try:
        claim = await actions.reply(
            org_id=me.org.id,
            thread_id=thread_id,
            operator_id=me.operator.id,
            body=body,
            channel=None,
            idempotency_key=_none_if_blank(idempotency_key),
            database=database,
            temporal=temporal,
        )
    except ThreadMissing:
        raise ApiError(404, "No such thread.") from None
    except (ThreadHeld, ReplyRefused, OperatorMissing) as error:
        return await _pane(request, me, database, thread_id, status_code=409, error=_why(error))
    if request.headers.get("hx-request") != "true":
        # A plain form post (no htmx yet): back to the thread, which shows the reply.
        return RedirectResponse(f"/app/inbox?thread={thread_id}", status_code=303)
    later = claim.send_at > utcnow()
    notice = (
        f"Reply saved; quiet hours: it goes at {claim.send_at:%H:%M} UTC."
        if later
        else "Reply sent."
    )
    return await _pane(request, me, database, thread_id, notice=notice)


#: What the pane says after each change of hold.
_HOLD_NOTICES = {
    "takeover": "You hold this thread; the AI is paused.",
    "release": "Released: the AI handles this thread again.",
}


# Registered last: its ``{change}`` must not shadow ``/reply`` and ``/viewing``.
@router.post("/inbox/threads/{thread_id}/{change}")
async def change_hold(
    request: Request,
    thread_id: IdParam,
    change: actions.HoldChange,
    me: OperatorSessionDep,
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
) -> Response:
    """Take the thread over from the AI, or hand it back (the holder, or the owner), as the
    signed-in operator."""
    try:
        await actions.change_hold(
            change,
            org_id=me.org.id,
            thread_id=thread_id,
            operator_id=me.operator.id,
            database=database,
            temporal=temporal,
        )
    except ThreadMissing:
        raise ApiError(404, "No such thread.") from None
    except (ThreadHeld, OperatorMissing) as error:
        return await _pane(request, me, database, thread_id, status_code=409, error=_why(error))
    return await _pane(request, me, database, thread_id, notice=_HOLD_NOTICES[change])
