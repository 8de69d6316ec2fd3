"""Health and alerts: the latest verdict of every check, alerts and acknowledging them,
silences (API.md "Health and alerts")."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from api import actions
from api.deps import DatabaseDep, IdParam, OrgDep, TemporalConnectionDep
from api.errors import ApiError, invalid
from api.openapi import ORG_KEY, errors
from api.sessions import ActorDep
from models.errors import InvalidCursor, NotFound, OperatorMissing
from models.reads.alerts import health_report, list_alerts, silence_view, silences
from models.reads.operators import operator_names
from models.schemas import ACTING_OPERATOR, Text
from models.schemas.health import (
    AlertList,
    AlertOut,
    HealthReport,
    SilenceIn,
    SilenceList,
    SilenceOut,
)
from models.services.alerts import lift_silence
from models.settings import Settings
from models.tables import utcnow

router = APIRouter(tags=["health"], responses=errors(*ORG_KEY))


class AcknowledgeAlertIn(BaseModel):
    """``POST /v1/alerts/{alert_id}/acknowledge``."""

    model_config = ConfigDict(extra="forbid")

    operator_id: Text | None = Field(
        default=None, min_length=1, max_length=64, description=ACTING_OPERATOR
    )


@router.get("/v1/health")
async def read_health(request: Request, org: OrgDep, database: DatabaseDep) -> HealthReport:
    """The latest verdict of every check: the org's own, and the deployment's (providers,
    workers, backlog, failed runs); the worst first. ``checks_running`` says whether the
    checks themselves still run."""
    settings: Settings = request.app.state.settings
    checks = await database.read(
        health_report, org_id=org.id, now=utcnow(), interval=settings.health_interval
    )
    return HealthReport(checks=checks)


@router.get("/v1/alerts", responses=errors(422))
async def read_alerts(
    org: OrgDep,
    database: DatabaseDep,
    state: Literal["open", "acknowledged", "resolved"] | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> AlertList:
    """The org's alerts, newest first; ``open`` means not resolved."""
    try:
        items, next_cursor = await database.read(
            list_alerts, org_id=org.id, state=state, limit=limit, cursor=cursor
        )
    except InvalidCursor as error:
        raise invalid("cursor", str(error)) from None
    return AlertList(items=items, next_cursor=next_cursor)


@router.post("/v1/alerts/{alert_id}/acknowledge", responses=errors(404, 409, 422))
async def acknowledge(
    alert_id: IdParam,
    actor: ActorDep,
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
    body: AcknowledgeAlertIn | None = None,
) -> AlertOut:
    """ "I've got it": the alert stops climbing its ladder. Answers with the alert once it
    says so; acknowledging it again changes nothing. 409 once it has resolved."""
    operator_id = actor.acting_operator(body.operator_id if body else None)
    try:
        return await actions.acknowledge_alert(
            org_id=actor.org.id,
            alert_id=alert_id,
            operator_id=operator_id,
            database=database,
            temporal=temporal,
        )
    except NotFound:
        raise ApiError(404, f"No alert {alert_id!r} in this org.") from None
    except OperatorMissing:
        raise invalid("operator_id", "no such operator in this org") from None
    except actions.AlertResolved:
        raise ApiError(409, "This alert has resolved already.", code="alert_resolved") from None


@router.post("/v1/silences", status_code=201, responses=errors(422))
async def create_silence(body: SilenceIn, actor: ActorDep, database: DatabaseDep) -> SilenceOut:
    """Hold back notices of matching alerts until ``until`` (a maintenance window when
    ``starts_at`` is later). Alerts still open, fire and resolve: only the notices wait."""
    names = await database.read(operator_names, org_id=actor.org.id)
    by = names.get(actor.operator_id, "API key") if actor.operator_id else "API key"
    try:
        return await actions.silence(org_id=actor.org.id, wanted=body, by=by, database=database)
    except actions.SilenceTooShort as error:
        raise invalid("until", str(error)) from None


@router.get("/v1/silences")
async def read_silences(org: OrgDep, database: DatabaseDep) -> SilenceList:
    """Silences and maintenance windows not yet over."""
    return SilenceList(items=list(await database.read(silences, org_id=org.id, now=utcnow())))


@router.get("/v1/silences/{silence_id}", responses=errors(404, 422))
async def read_silence(silence_id: IdParam, org: OrgDep, database: DatabaseDep) -> SilenceOut:
    """One silence."""
    try:
        return await database.read(silence_view, org_id=org.id, silence_id=silence_id)
    except NotFound:
        raise ApiError(404, f"No silence {silence_id!r} in this org.") from None


@router.delete("/v1/silences/{silence_id}", status_code=204, responses=errors(404, 422))
async def delete_silence(silence_id: IdParam, actor: ActorDep, database: DatabaseDep) -> Response:
    """Lift a silence: notices go out again from now on."""
    try:
        await database.run(lift_silence, org_id=actor.org.id, silence_id=silence_id)
    except NotFound:
        raise ApiError(404, f"No silence {silence_id!r} in this org.") from None
    return Response(status_code=204)
