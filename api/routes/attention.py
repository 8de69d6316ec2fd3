"""The needs-attention queue and closing its items."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import DatabaseDep, IdParam, OrgDep
from api.errors import ApiError
from models import attention
from models.schemas import Text
from models.tables import Escalation

router = APIRouter(tags=["attention"])


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


class AttentionList(BaseModel):
    """``GET /v1/attention``: unresolved items, oldest SLA first."""

    items: list[AttentionItem]


class ResolveIn(BaseModel):
    """``POST /v1/escalations/{id}/resolve``."""

    model_config = ConfigDict(extra="forbid")

    operator_id: Text = Field(min_length=1, max_length=64)
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
    )


@router.get("/v1/attention")
async def list_attention(
    org: OrgDep, database: DatabaseDep, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> AttentionList:
    """What needs a person: open items, the one whose SLA runs out first at the top."""
    rows = await database.run(attention.attention, org_id=org.id, limit=limit)
    return AttentionList(items=[_item(row) for row in rows])


@router.post("/v1/escalations/{escalation_id}/resolve")
async def resolve(
    escalation_id: IdParam, body: ResolveIn, org: OrgDep, database: DatabaseDep
) -> AttentionItem:
    """Close an item (for an identity conflict: the two contacts are different people)."""
    try:
        row = await database.run(
            attention.resolve,
            org_id=org.id,
            escalation_id=escalation_id,
            by=body.operator_id,
            resolution=body.resolution,
        )
    except attention.EscalationMissing:
        raise ApiError(404, f"No escalation {escalation_id!r} in this org.") from None
    return _item(row)
