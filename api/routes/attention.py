"""The needs-attention queue and closing its items."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from api import actions
from api.deps import DatabaseDep, IdParam, OrgDep, TemporalConnectionDep
from api.errors import ApiError, invalid
from api.openapi import ORG_KEY, errors
from api.sessions import ActorDep
from api.temporal import start_escalation
from models.errors import EscalationMissing, OperatorMissing
from models.reads.attention import open_items
from models.schemas import ACTING_OPERATOR, Text
from models.services.escalations import escalate_thread
from models.tables import Escalation
from models.values import Priority

router = APIRouter(tags=["attention"], responses=errors(*ORG_KEY))


class AttentionItem(BaseModel):
    """One item of ``GET /v1/attention``."""

    escalation_id: str
    lead_id: str | None
    thread_id: str | None
    reason: str
    priority: str
    summary: str
    opened_at: datetime
    sla_due_at: datetime
    level: int
    status: str
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolution: str | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None


class AttentionList(BaseModel):
    """``GET /v1/attention``: unresolved items, oldest SLA first."""

    items: list[AttentionItem]


class ResolveIn(BaseModel):
    """``POST /v1/escalations/{id}/resolve``."""

    model_config = ConfigDict(extra="forbid")

    operator_id: Text | None = Field(
        default=None, min_length=1, max_length=64, description=ACTING_OPERATOR
    )
    resolution: Text | None = Field(default=None, max_length=500)


def _item(row: Escalation) -> AttentionItem:
    return AttentionItem(
        escalation_id=row.id,
        lead_id=row.lead_id,
        thread_id=row.thread_id,
        reason=row.reason,
        priority=row.priority,
        summary=row.summary,
        opened_at=row.opened_at,
        sla_due_at=row.sla_due_at,
        level=row.level,
        status=row.status,
        resolved_at=row.resolved_at,
        resolved_by=row.resolved_by,
        resolution=row.resolution,
        acknowledged_at=row.acknowledged_at,
        acknowledged_by=row.acknowledged_by,
    )


@router.get("/v1/attention", responses=errors(422))
async def list_attention(
    org: OrgDep, database: DatabaseDep, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> AttentionList:
    """What needs a person: open items, the one whose SLA runs out first at the top."""
    rows = await database.read(open_items, org_id=org.id, limit=limit)
    return AttentionList(items=[_item(row) for row in rows])


class EscalateIn(BaseModel):
    """``POST /v1/threads/{thread_id}/escalate``."""

    model_config = ConfigDict(extra="forbid")

    reason: Text = Field(min_length=1, max_length=64)
    priority: Priority
    summary: Text | None = Field(default=None, max_length=2000)


class Escalated(BaseModel):
    """``202``: the escalation (an open one of the thread, if there was one)."""

    escalation_id: str
    duplicate: bool


class AcknowledgeIn(BaseModel):
    """``POST /v1/escalations/{id}/acknowledge``."""

    model_config = ConfigDict(extra="forbid")

    operator_id: Text | None = Field(
        default=None, min_length=1, max_length=64, description=ACTING_OPERATOR
    )


@router.post("/v1/threads/{thread_id}/escalate", status_code=202, responses=errors(404, 413, 422))
async def escalate(
    thread_id: IdParam,
    body: EscalateIn,
    org: OrgDep,
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
) -> Escalated:
    """What an AI agent or a rule calls when it needs a person: the thread's open escalation,
    or a new one whose ladder starts at once."""
    try:
        row, created = await database.run(
            escalate_thread,
            org_id=org.id,
            thread_id=thread_id,
            reason=body.reason,
            priority=body.priority,
            summary=body.summary,
        )
    except EscalationMissing:
        raise ApiError(404, f"No thread {thread_id!r} in this org.") from None
    # Started again for an open one too: a ladder that failed to start is started now.
    await start_escalation(await temporal.client(), row)
    return Escalated(escalation_id=row.id, duplicate=not created)


@router.post("/v1/escalations/{escalation_id}/acknowledge", responses=errors(404, 413, 422))
async def acknowledge(
    escalation_id: IdParam,
    body: AcknowledgeIn,
    actor: ActorDep,
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
) -> AttentionItem:
    """Someone has it: it stops climbing the ladder."""
    try:
        row = await actions.acknowledge(
            org_id=actor.org.id,
            escalation_id=escalation_id,
            operator_id=actor.acting_operator(body.operator_id),
            database=database,
            temporal=temporal,
        )
    except EscalationMissing:
        raise ApiError(404, f"No escalation {escalation_id!r} in this org.") from None
    except OperatorMissing:
        raise invalid("operator_id", "no such operator in this org") from None
    return _item(row)


@router.post("/v1/escalations/{escalation_id}/resolve", responses=errors(404, 413, 422))
async def resolve(
    escalation_id: IdParam,
    body: ResolveIn,
    actor: ActorDep,
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
) -> AttentionItem:
    """Close an item (for an identity conflict: the two contacts are different people)."""
    try:
        row = await actions.resolve(
            org_id=actor.org.id,
            escalation_id=escalation_id,
            operator_id=actor.acting_operator(body.operator_id),
            resolution=body.resolution,
            database=database,
            temporal=temporal,
        )
    except EscalationMissing:
        raise ApiError(404, f"No escalation {escalation_id!r} in this org.") from None
    except OperatorMissing:
        raise invalid("operator_id", "no such operator in this org") from None
    return _item(row)
