"""The Command Center (``/app``): what the AI is doing right now and whether keepwarm's
checks are happy, at a glance."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.deps import DatabaseDep
from api.sessions import OperatorSessionDep
from api.ui.alerts import SEVERITY, check_label, read_health
from api.ui.render import page
from models.reads.command import now_summary
from models.tables import utcnow

router = APIRouter(prefix="/app", include_in_schema=False)


@router.get("")
async def command_center(
    request: Request, me: OperatorSessionDep, database: DatabaseDep
) -> Response:
    """The landing page after sign-in from ``/app``."""
    now = utcnow()
    summary = await database.read(now_summary, org_id=me.org.id, now=now)
    return page(
        request,
        "command.html",
        me=me,
        title="Command Center",
        section="command",
        now_summary=summary,
        now=now,
        health=await read_health(request, me, database),
        severity=SEVERITY,
        check_label=check_label,
    )


@router.get("/now")
async def now_fragment(request: Request, me: OperatorSessionDep, database: DatabaseDep) -> Response:
    """The "now" region alone (a live region re-fetches it)."""
    now = utcnow()
    summary = await database.read(now_summary, org_id=me.org.id, now=now)
    return page(request, "command.html", me=me, block="command_now", now_summary=summary, now=now)
