"""Messages in and out, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import DatabaseDep, OrgDep, QueryId
from api.openapi import ORG_KEY, errors
from models.reads import leads as lead_reads
from models.schemas import MessageList, MessagePublic
from models.values import Channel, Direction, MessageStatus

router = APIRouter(prefix="/v1/messages", tags=["messages"], responses=errors(*ORG_KEY))


@router.get("", responses=errors(422))
async def list_messages(
    org: OrgDep,
    database: DatabaseDep,
    lead_id: QueryId = None,
    thread_id: QueryId = None,
    direction: Direction | None = None,
    channel: Channel | None = None,
    status: MessageStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> MessageList:
    """The org's messages, filtered by lead, thread, direction, channel or status."""
    rows = await database.read(
        lead_reads.list_messages,
        org_id=org.id,
        lead_id=lead_id,
        thread_id=thread_id,
        direction=direction,
        channel=channel,
        status=status,
        limit=limit,
    )
    return MessageList(
        items=[MessagePublic.model_validate(row, from_attributes=True) for row in rows]
    )
