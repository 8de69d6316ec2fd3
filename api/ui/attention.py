"""Needs attention: open escalations, oldest SLA first; acknowledge and resolve as the
signed-in operator."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from starlette.responses import Response

from api import actions
from api.deps import DatabaseDep, IdParam, TemporalConnectionDep
from api.errors import ApiError
from api.sessions import OperatorSessionDep
from api.ui.render import page
from models.errors import EscalationMissing, OperatorMissing
from models.reads.attention import open_items
from models.reads.operators import operator_names
from models.services.sign_in import Current
from models.tables import utcnow

router = APIRouter(prefix="/app", include_in_schema=False)

#: How the queue names the reasons the engine escalates for.
REASONS = {
    "identity_conflict": "Two contacts may be one person",
    "missed_calls": "Calls went unanswered",
    "complaint": "Complaint",
    "negative_sentiment": "Unhappy customer",
    "needs_person": "Asked for a person",
    "vip": "VIP customer",
    "takeover_timeout": "Takeover ended on its own",
}
LIMIT = 200


async def _context(me: Current, database: DatabaseDep) -> dict[str, Any]:
    now = utcnow()
    items = await database.read(open_items, org_id=me.org.id, limit=LIMIT)
    operators = await database.read(operator_names, org_id=me.org.id)
    return {
        "items": items,
        "now": now,
        "breached": sum(1 for item in items if item.sla_due_at <= now),
        "operators": operators,
        "reasons": REASONS,
    }


@router.get("/attention")
async def attention(request: Request, me: OperatorSessionDep, database: DatabaseDep) -> Response:
    """The needs-attention page."""
    context = await _context(me, database)
    return page(
        request, "attention.html", me=me, title="Needs attention", section="attention", **context
    )


@router.get("/attention/table")
async def attention_table(
    request: Request, me: OperatorSessionDep, database: DatabaseDep
) -> Response:
    """The queue alone (a live region re-fetches it)."""
    return await _table(request, me, database)


async def _table(request: Request, me: Current, database: DatabaseDep, **extra: Any) -> Response:
    context = await _context(me, database)
    return page(request, "attention.html", me=me, block="attention_table", **context, **extra)


@router.post("/attention/{escalation_id}/{step}")
async def close(
    request: Request,
    escalation_id: IdParam,
    step: Literal["acknowledge", "resolve"],
    me: OperatorSessionDep,
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
) -> Response:
    """Acknowledge (I have it: it stops climbing) or resolve (dealt with: it closes), as the
    signed-in operator."""
    who = {"org_id": me.org.id, "escalation_id": escalation_id, "operator_id": me.operator.id}
    try:
        if step == "acknowledge":
            row = await actions.acknowledge(**who, database=database, temporal=temporal)
        else:
            row = await actions.resolve(
                **who, resolution=None, database=database, temporal=temporal
            )
    except (EscalationMissing, OperatorMissing):
        raise ApiError(404, "No such escalation.") from None
    done = "Acknowledged" if step == "acknowledge" else "Resolved"
    return await _table(request, me, database, notice=f"{done}: {row.summary}")
