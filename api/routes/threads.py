"""The unified inbox: one thread per contact across channels, filtered, searched and sorted;
an operator takes a thread over from the AI, replies on it, and hands it back."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api import actions
from api.deps import (
    DatabaseDep,
    IdParam,
    OrgDep,
    QueryText,
    TemporalConnectionDep,
)
from api.errors import ApiError, invalid
from api.openapi import ORG_KEY, errors
from api.sessions import ActorDep
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
from models.reads.inbox import THREAD_MESSAGES_MAX, thread_view
from models.rules.orgs import org_settings
from models.rules.takeover import Hold
from models.schemas import (
    ReplyIn,
    ReplyOut,
    TakeoverIn,
    TakeoverOut,
    ThreadDetail,
    ThreadList,
    ThreadPriority,
    ThreadSort,
)
from models.values import Channel, HandledBy, MessageStatus, ThreadStatus

router = APIRouter(prefix="/v1/threads", tags=["inbox"], responses=errors(*ORG_KEY))


@router.get("", responses=errors(422))
async def list_threads(
    org: OrgDep,
    database: DatabaseDep,
    channel: Channel | None = None,
    status: ThreadStatus | None = None,
    handled_by: HandledBy | None = None,
    priority: ThreadPriority | None = None,
    q: QueryText = None,
    sort: ThreadSort = "recent",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> ThreadList:
    """The org's threads, filtered, searched (name, email, phone, message text) and sorted,
    a page at a time."""
    try:
        items, next_cursor = await database.read(
            inbox_reads.list_threads,
            org_id=org.id,
            channel=channel,
            status=status,
            handled_by=handled_by,
            priority=priority,
            q=q,
            region=org_settings(org).default_region,
            sort=sort,
            limit=limit,
            cursor=cursor,
        )
    except InvalidCursor as error:
        raise invalid("cursor", str(error)) from None
    return ThreadList(items=items, next_cursor=next_cursor)


@router.get("/{thread_id}", responses=errors(404, 422))
async def read_thread(
    thread_id: IdParam,
    org: OrgDep,
    database: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=THREAD_MESSAGES_MAX)] = THREAD_MESSAGES_MAX,
) -> ThreadDetail:
    """One thread: its contact, its latest ``limit`` messages (oldest first; ``earlier_messages``
    counts the rest) and its unresolved escalations."""
    try:
        return await database.read(thread_view, org_id=org.id, thread_id=thread_id, limit=limit)
    except NotFound:
        raise ApiError(404, f"No thread {thread_id!r} in this org.") from None


# --- takeover ------------------------------------------------------------------------------


def _hold_out(hold: Hold) -> TakeoverOut:
    return TakeoverOut(
        thread_id=hold.thread_id,
        held_by=hold.held_by,
        held_since=hold.held_since,
        releases_at=hold.releases_at,
        acknowledged=hold.acknowledged,
        changed=hold.changed,
    )


def _refused(thread_id: str, error: Exception) -> ApiError:
    """The 4xx for a takeover, release or reply the database refused."""
    if isinstance(error, OperatorMissing):
        return invalid("operator_id", "no such operator in this org")
    if isinstance(error, ThreadMissing):
        return ApiError(404, f"No thread {thread_id!r} in this org.")
    if isinstance(error, ThreadHeld):
        return ApiError(409, str(error), code="thread_held")
    if isinstance(error, NoAddress):
        return invalid("channel", str(error))
    if isinstance(error, ReplyRefused):
        return ApiError(409, str(error), code=error.code)
    raise error


@router.post("/{thread_id}/takeover", responses=errors(404, 409, 413, 422))
async def take_over(
    thread_id: IdParam,
    body: TakeoverIn,
    actor: ActorDep,
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
) -> TakeoverOut:
    """The operator holds the thread: every automation of the contact (nudges, calls)
    pauses until they release it, or until they have written nothing for the org's
    ``takeover_timeout``. Another operator's hold: 409 ``thread_held``."""
    try:
        hold = await actions.change_hold(
            "takeover",
            org_id=actor.org.id,
            thread_id=thread_id,
            operator_id=actor.acting_operator(body.operator_id),
            database=database,
            temporal=temporal,
        )
    except (OperatorMissing, ThreadMissing, ThreadHeld) as error:
        raise _refused(thread_id, error) from None
    return _hold_out(hold)


@router.post("/{thread_id}/release", responses=errors(404, 409, 413, 422))
async def release(
    thread_id: IdParam,
    body: TakeoverIn,
    actor: ActorDep,
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
) -> TakeoverOut:
    """Hand the thread back to the AI: automation resumes where it was. The holder or the
    owner may release; anyone else gets 409 ``thread_held``."""
    try:
        hold = await actions.change_hold(
            "release",
            org_id=actor.org.id,
            thread_id=thread_id,
            operator_id=actor.acting_operator(body.operator_id),
            database=database,
            temporal=temporal,
        )
    except (OperatorMissing, ThreadMissing, ThreadHeld) as error:
        raise _refused(thread_id, error) from None
    return _hold_out(hold)


@router.post("/{thread_id}/reply", status_code=202, responses=errors(404, 409, 413, 422))
async def reply(
    thread_id: IdParam,
    body: ReplyIn,
    actor: ActorDep,
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
) -> ReplyOut:
    """Send the operator's message on the thread's channel (or ``channel``), logged with
    sender ``human``. Replying takes the thread over; another operator's hold: 409. The
    person's withdrawn consent: 409 ``opted_out``; quiet hours: sent when they end. Send an
    ``idempotency_key``: a retry with it (after a 503, say) sends nothing twice."""
    try:
        claim = await actions.reply(
            org_id=actor.org.id,
            thread_id=thread_id,
            operator_id=actor.acting_operator(body.operator_id),
            body=body.body,
            channel=Channel(body.channel) if body.channel else None,
            idempotency_key=body.idempotency_key,
            database=database,
            temporal=temporal,
        )
    except (OperatorMissing, ThreadMissing, ThreadHeld, ReplyRefused) as error:
        raise _refused(thread_id, error) from None
    message = claim.message
    return ReplyOut(
        message_id=message.id,
        thread_id=thread_id,
        channel=Channel(message.channel),
        status=MessageStatus(message.status),
        send_at=claim.send_at,
        took_over=claim.hold.changed,
        duplicate=claim.repeated,
    )
