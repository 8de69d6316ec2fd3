"""Liveness and readiness."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.deps import Database, TemporalConnection
from models.reads.orgs import ping
from models.settings import Settings
from models.tables import utcnow
from workers.presence import workers_missing

router = APIRouter(tags=["health"])


class Readiness(BaseModel):
    """``GET /readyz``: ready, or which dependency failed: ``unavailable: <error>``, or for
    ``workers`` ``missing: workflow, activity`` (the kinds with no poll seen lately)."""

    status: Literal["ready", "unavailable"]
    checks: dict[Literal["database", "temporal", "workers"], str]


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """200 while the process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A dependency is unavailable."}},
)
async def readyz(request: Request) -> JSONResponse:
    """200 when the database and Temporal answer and a worker polls keepwarm's task queue
    for workflows and for activities; else 503 naming what failed. (``/healthz`` is the
    liveness probe: a restart of the API cures none of these.)"""
    database: Database = request.app.state.database
    temporal: TemporalConnection = request.app.state.temporal
    settings: Settings = request.app.state.settings
    checks: dict[str, Any] = {}
    try:
        await asyncio.wait_for(database.run(ping), timeout=3)
        checks["database"] = "ok"
    except Exception as error:
        checks["database"] = f"unavailable: {type(error).__name__}"
    try:
        client = await temporal.client()
        await asyncio.wait_for(client.service_client.check_health(), timeout=3)
        checks["temporal"] = "ok"
        absent = await asyncio.wait_for(
            workers_missing(client, now=utcnow(), absent_after=settings.workers_absent_after),
            timeout=3,
        )
        checks["workers"] = f"missing: {', '.join(absent)}" if absent else "ok"
    except Exception as error:
        if "temporal" in checks:
            checks["workers"] = f"unavailable: {type(error).__name__}"
        else:
            checks["temporal"] = f"unavailable: {type(error).__name__}"
            checks["workers"] = "unknown: Temporal is unavailable"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )
