"""Messages in and out, newest first; a failed send retried by hand, and the workflow runs
that failed (the admin's retry: API.md "Admin retry")."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from api import actions
from api.deps import DatabaseDep, IdParam, OrgDep, QueryId, SettingsDep, TemporalConnectionDep
from api.openapi import ORG_KEY, errors
from api.sessions import ActorDep
from api.temporal import failed_workflows
from models.reads import leads as lead_reads
from models.rules.retry import send_error_class
from models.schemas import MessageList, MessagePublic
from models.schemas.retry import FailedWorkflowList, RetryAccepted, RetryIn
from models.tables import Message
from models.values import Channel, Direction, MessageStatus

router = APIRouter(responses=errors(*ORG_KEY))


@router.get("/v1/messages", tags=["messages"], responses=errors(422))
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
    """The org's messages, filtered by lead, thread, direction, channel or status. A failed
    one says why (``error``) and the class of its error (``error_class``)."""
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
    return MessageList(items=[_public(row) for row in rows])


def _public(row: Message) -> MessagePublic:
    item = MessagePublic.model_validate(row, from_attributes=True)
    if item.status != MessageStatus.FAILED:
        return item.model_copy(update={"error": None})
    return item.model_copy(update={"error_class": send_error_class(row.error)})


@router.post(
    "/v1/messages/{message_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    tags=["messages"],
    responses=errors(404, 409, 422),
)
async def retry_message(
    message_id: IdParam,
    actor: ActorDep,
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
    body: RetryIn | None = None,
) -> RetryAccepted:
    """Send a failed outbound message again, once (the org's API key or the owner's session).

    The same row goes again through the same once-only path as its first send: a
    ``RetrySend`` workflow (``retry-{message_id}``) checks it again, puts it back to
    ``pending`` and sends it, reconciling first an attempt that may have reached the
    provider. Two requests at once, or one repeated, send it once (``duplicate: true``).
    409 for a message that isn't failed, an opted-out recipient (never retried), a business
    refusal without ``{"force": true}``, a bounced email, an automated touch of a lead
    converted since, or free WhatsApp text outside the 24-hour session.
    """
    actor.require_owner()
    return await actions.retry_send(
        org_id=actor.org.id,
        message_id=message_id,
        force=body.force if body is not None else False,
        requested_by=actor.operator_id,
        database=database,
        temporal=temporal,
    )


@router.get("/v1/workflows/failed", tags=["workflows"], responses=errors(422))
async def list_failed_workflows(
    actor: ActorDep,
    settings: SettingsDep,
    temporal: TemporalConnectionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> FailedWorkflowList:
    """The org's workflow runs that failed or timed out, latest first (the org's API key or
    the owner's session): type, id, when, why, and a link to the run in the Temporal Web UI
    (``temporal_url``), where an operator can Reset it."""
    actor.require_owner()
    items = await failed_workflows(
        await temporal.client(),
        org_id=actor.org.id,
        limit=limit,
        ui_url=settings.effective_temporal_ui_url,
    )
    return FailedWorkflowList(items=items)
