"""The unified inbox: one thread per contact across channels, filtered, searched and sorted."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import DatabaseDep, IdParam, OrgDep, QueryText
from api.errors import ApiError, invalid
from models import store
from models.schemas import (
    HandledBy,
    ThreadDetail,
    ThreadList,
    ThreadPriority,
    ThreadSort,
    ThreadStatus,
)
from models.values import Channel

router = APIRouter(prefix="/v1/threads", tags=["inbox"])


@router.get("")
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
        items, next_cursor = await database.run(
            store.list_threads,
            org_id=org.id,
            channel=channel,
            status=status,
            handled_by=handled_by,
            priority=priority,
            q=q,
            region=store.org_settings(org).default_region,
            sort=sort,
            limit=limit,
            cursor=cursor,
        )
    except store.InvalidCursor as error:
        raise invalid("cursor", str(error)) from None
    return ThreadList(items=items, next_cursor=next_cursor)


@router.get("/{thread_id}")
async def read_thread(
    thread_id: IdParam,
    org: OrgDep,
    database: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=store.THREAD_MESSAGES_MAX)] = store.THREAD_MESSAGES_MAX,
) -> ThreadDetail:
    """One thread: its contact, its latest ``limit`` messages (oldest first; ``earlier_messages``
    counts the rest) and its unresolved escalations."""
    try:
        return await database.run(
            store.thread_view, org_id=org.id, thread_id=thread_id, limit=limit
        )
    except store.NotFound:
        raise ApiError(404, f"No thread {thread_id!r} in this org.") from None
