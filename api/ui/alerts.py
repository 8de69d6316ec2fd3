"""Alerts: what keepwarm found wrong with itself or its providers, who was told and what became
of it; acknowledge as the signed-in operator; silences; and the owner's alert contacts and
thresholds (HEALTH.md, API.md "Health and alerts").

The same use cases as the JSON API (``api.actions``, ``change_settings``, with its entry on
the settings audit list), the same
validation (``SilenceIn``, ``OrgSettingsPatch``), shown as a page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from pydantic import ValidationError
from starlette.responses import Response

from api import actions
from api.deps import DatabaseDep, IdParam, OrgCacheDep, TemporalConnectionDep
from api.errors import ApiError
from api.sessions import OperatorSessionDep
from api.ui.render import page
from models.errors import NotFound, OperatorMissing
from models.reads.alerts import health_report, list_alerts, silences
from models.rules import health
from models.rules.alerts import lasted
from models.rules.orgs import org_settings
from models.schemas import OrgSettingsPatch
from models.schemas.health import AlertOut, HealthCheckOut, SilenceIn
from models.schemas.settings import AlertSettings
from models.services.alerts import lift_silence
from models.services.settings import change_settings
from models.services.sign_in import Current
from models.settings import Settings
from models.tables import Org, utcnow
from models.values import HealthStatus, OperatorRole

router = APIRouter(prefix="/app", include_in_schema=False)

#: What each check watches, as the pages name it.
CHECK_NAMES = {
    health.PROVIDER: "Provider",
    health.WORKERS: "Workers",
    health.BACKLOG: "Backlog",
    health.WORKFLOW_FAILURES: "Workflow failures",
    health.SEND_FAILURES: "Send failures",
    health.WEBHOOKS: "Webhooks",
    health.LEADS_ARRIVING: "Leads arriving",
    health.SPEED_TO_LEAD: "Speed to lead",
    health.DELIVERABILITY: "Deliverability",
    health.CHECKS_RUNNING: "Health checks",
}
SEVERITY = {
    HealthStatus.CRITICAL: "Critical",
    HealthStatus.WARNING: "Warning",
    HealthStatus.UNKNOWN: "Unknown",
    HealthStatus.OK: "OK",
}
#: What became of a notice: the message's status, or why it was held back.
NOTICE_STATUS = {
    "silenced": "held back by a silence",
    "over_quota": "not sent: monthly SMS limit reached",
    "no_contact": "not sent: nobody to send it to",
    "pending": "sending",
    "queued": "queued",
    "sent": "sent",
    "delivered": "delivered",
    "failed": "failed",
    "simulated": "dry run, not really sent",
}
CHANNELS = {"email": "Email", "sms": "SMS"}
#: How many open and resolved alerts the page lists.
OPEN_LIMIT = 100
RESOLVED_LIMIT = 20
#: The nav badge counts open alerts up to this, then says "9+".
BADGE_LIMIT = 9
#: A new silence lasts this long unless the person says otherwise.
DEFAULT_SILENCE = timedelta(hours=1)
_RANK = (HealthStatus.CRITICAL, HealthStatus.WARNING, HealthStatus.UNKNOWN, HealthStatus.OK)


def check_label(check: str, status: HealthStatus) -> str:
    """The check's name on a page; the checks themselves not running say so."""
    if check == health.CHECKS_RUNNING and status == HealthStatus.CRITICAL:
        return "Checks not running"
    return CHECK_NAMES.get(check, check.replace("_", " ").capitalize())


@dataclass(frozen=True)
class HealthStrip:
    """The Command Center's health line: each check that is not OK (worst first), or when
    the checks last ran."""

    problems: list[HealthCheckOut]
    last_run: datetime | None


def health_strip(checks: list[HealthCheckOut]) -> HealthStrip:
    """``checks`` as ``health_report`` gives them (worst first) made into the strip."""
    runs = [c.checked_at for c in checks if c.check != health.CHECKS_RUNNING and c.checked_at]
    return HealthStrip(
        problems=[c for c in checks if c.status != HealthStatus.OK],
        last_run=max(runs, default=None),
    )


async def read_health(request: Request, me: Current, database: DatabaseDep) -> HealthStrip:
    """The strip for the signed-in operator's org, from the latest samples."""
    settings: Settings = request.app.state.settings
    checks = await database.read(
        health_report, org_id=me.org.id, now=utcnow(), interval=settings.health_interval
    )
    return health_strip(checks)


def _form_values(alerts: AlertSettings) -> dict[str, str]:
    minutes = alerts.speed_to_lead_target.total_seconds() / 60
    return {
        "email": "\n".join(str(a) for a in alerts.email),
        "sms": "\n".join(alerts.sms),
        "sms_per_month": str(alerts.sms_per_month),
        "speed_to_lead_minutes": f"{minutes:g}",
        "heartbeat_url": str(alerts.heartbeat_url or ""),
    }


def _targets(checks: list[HealthCheckOut], alerts: list[AlertOut]) -> list[dict[str, Any]]:
    """What a silence can cover: every alert of a check, or one check's one subject (the
    subjects the org's checks and alerts have named), by check."""
    subjects: dict[str, set[str]] = {check: set() for check in health.CHECKS}
    for rule, subject in [
        *((c.check, c.subject) for c in checks),
        *((a.rule, a.subject) for a in alerts),
    ]:
        subjects.setdefault(rule, set()).add(subject)
    return [
        {
            "check": check,
            "name": CHECK_NAMES.get(check, check),
            "subjects": sorted(subjects[check]),
        }
        for check in health.CHECKS
    ]


def _order(alert: AlertOut) -> tuple[bool, int, float]:
    """Unacknowledged first, then the worst, then the newest."""
    return (
        alert.acknowledged_at is not None,
        _RANK.index(alert.severity),
        -alert.opened_at.timestamp(),
    )


async def _alerts_context(me: Current, database: DatabaseDep) -> dict[str, Any]:
    open_alerts, more = await database.read(
        list_alerts, org_id=me.org.id, state="open", limit=OPEN_LIMIT, cursor=None
    )
    resolved, _ = await database.read(
        list_alerts, org_id=me.org.id, state="resolved", limit=RESOLVED_LIMIT, cursor=None
    )
    return {
        "open_alerts": sorted(open_alerts, key=_order),
        "more_open": more is not None,
        "resolved": resolved,
        "open_count": _count(open_alerts, more),
        "severity": SEVERITY,
        "check_label": check_label,
        "notice_status": NOTICE_STATUS,
        "channels": CHANNELS,
        "lasted": lasted,
        "now": utcnow(),
    }


def _count(alerts: list[AlertOut], more: str | None) -> str:
    return f"{len(alerts)}+" if more else (str(len(alerts)) if alerts else "")


async def _page(
    request: Request,
    me: Current,
    database: DatabaseDep,
    *,
    status_code: int = 200,
    org: Org | None = None,
    settings_form: dict[str, str] | None = None,
    silence_form: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    settings: Settings = request.app.state.settings
    now = utcnow()
    context = await _alerts_context(me, database)
    checks = await database.read(
        health_report, org_id=me.org.id, now=now, interval=settings.health_interval
    )
    active = await database.read(silences, org_id=me.org.id, now=now)
    alert_settings = org_settings(org or me.org).alerts
    until = (now + DEFAULT_SILENCE).replace(second=0, microsecond=0)
    return page(
        request,
        "alerts.html",
        me=me,
        title="Alerts",
        section="alerts",
        status_code=status_code,
        checks=checks,
        silences=active,
        targets=_targets(checks, [*context["open_alerts"], *context["resolved"]]),
        silence_form=silence_form or {"until": f"{until:%Y-%m-%dT%H:%M}"},
        alert_settings=alert_settings,
        settings_form=settings_form or _form_values(alert_settings),
        interval=lasted(settings.health_interval),
        is_owner=me.operator.role == OperatorRole.OWNER,
        **context,
        **extra,
    )


@router.get("/alerts")
async def alerts_page(request: Request, me: OperatorSessionDep, database: DatabaseDep) -> Response:
    """Open alerts, recently resolved ones, the checks, silences and the alert settings."""
    return await _page(request, me, database)


async def _alerts_region(
    request: Request, me: Current, database: DatabaseDep, **extra: Any
) -> Response:
    context = await _alerts_context(me, database)
    return page(request, "alerts.html", me=me, block="alerts_list", **context, **extra)


@router.get("/alerts/list")
async def alerts_list(request: Request, me: OperatorSessionDep, database: DatabaseDep) -> Response:
    """The open and resolved alerts alone (a live region re-fetches it)."""
    return await _alerts_region(request, me, database)


@router.get("/fragments/alerts")
async def alerts_badge(request: Request, me: OperatorSessionDep, database: DatabaseDep) -> Response:
    """The nav's count of open alerts."""
    found, more = await database.read(
        list_alerts, org_id=me.org.id, state="open", limit=BADGE_LIMIT, cursor=None
    )
    return page(request, "_alerts_badge.html", me=me, open_count=_count(found, more))


@router.get("/fragments/health")
async def health_fragment(
    request: Request, me: OperatorSessionDep, database: DatabaseDep
) -> Response:
    """The Command Center's health strip alone (a live region re-fetches it)."""
    return page(
        request,
        "command.html",
        me=me,
        block="command_health",
        health=await read_health(request, me, database),
        severity=SEVERITY,
        check_label=check_label,
    )


@router.post("/alerts/{alert_id}/acknowledge")
async def acknowledge(
    request: Request,
    alert_id: IdParam,
    me: OperatorSessionDep,
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
) -> Response:
    """ "I've got it", as the signed-in operator: the alert stops climbing its ladder."""
    try:
        alert = await actions.acknowledge_alert(
            org_id=me.org.id,
            alert_id=alert_id,
            operator_id=me.operator.id,
            database=database,
            temporal=temporal,
        )
    except (NotFound, OperatorMissing):
        raise ApiError(404, "No such alert.") from None
    except actions.AlertResolved:
        return await _alerts_region(
            request, me, database, error="That alert resolved before anyone acknowledged it."
        )
    except ApiError as error:
        if error.status != 503:
            raise
        return await _alerts_region(request, me, database, error=error.message)
    return await _alerts_region(
        request, me, database, notice=f"Acknowledged: {alert.summary}", announce=True
    )


def _field_errors(error: ValidationError, values: dict[str, list[str]]) -> dict[str, str]:
    """pydantic's errors by form field; a list item's names the item."""
    found: dict[str, list[str]] = {}
    for problem in error.errors():
        loc = [part for part in problem["loc"] if part != "alerts"]
        field = str(loc[0]) if loc else "form"
        message = str(problem["msg"]).removeprefix("Value error, ")
        if len(loc) > 1 and isinstance(loc[1], int) and field in values:
            message = f"“{values[field][loc[1]]}”: {message}"
        found.setdefault(field, []).append(message)
    return {field: "; ".join(messages) for field, messages in found.items()}


def _items(text: str) -> list[str]:
    return [item.strip() for line in text.splitlines() for item in line.split(",") if item.strip()]


def _alert_patch(
    typed: dict[str, str], lists: dict[str, list[str]]
) -> tuple[OrgSettingsPatch | None, dict[str, str]]:
    """The settings form as ``PATCH /v1/orgs/me`` would take it (``alerts`` only), or the
    errors by form field. The target is typed in minutes; the API takes any duration."""
    errors: dict[str, str] = {}
    changes: dict[str, Any] = {
        **lists,
        "sms_per_month": typed["sms_per_month"].strip(),
        "heartbeat_url": typed["heartbeat_url"].strip() or None,
    }
    try:
        minutes = float(typed["speed_to_lead_minutes"])
        if not math.isfinite(minutes):
            raise ValueError
        changes["speed_to_lead_target"] = timedelta(minutes=minutes)
    except (ValueError, OverflowError):
        errors["speed_to_lead_minutes"] = "Enter a number of minutes."
    try:
        patch = OrgSettingsPatch.model_validate({"alerts": changes})
    except ValidationError as error:
        errors = {**_field_errors(error, lists), **errors}
        if errors.pop("speed_to_lead_target", None):
            errors["speed_to_lead_minutes"] = "must be more than 0 minutes"
        return None, errors
    return (None, errors) if errors else (patch, errors)


@router.post("/alerts/settings")
async def save_settings(
    request: Request,
    me: OperatorSessionDep,
    database: DatabaseDep,
    cache: OrgCacheDep,
    email: Annotated[str, Form(max_length=2000)] = "",
    sms: Annotated[str, Form(max_length=500)] = "",
    sms_per_month: Annotated[str, Form(max_length=20)] = "",
    speed_to_lead_minutes: Annotated[str, Form(max_length=20)] = "",
    heartbeat_url: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """The owner changes who hears about alerts and the thresholds, validated as
    ``PATCH /v1/orgs/me`` validates them and saved by the same service."""
    if me.operator.role != OperatorRole.OWNER:
        raise ApiError(403, "Only the owner can change alert settings.", code="owner_only")
    typed = {
        "email": email,
        "sms": sms,
        "sms_per_month": sms_per_month,
        "speed_to_lead_minutes": speed_to_lead_minutes,
        "heartbeat_url": heartbeat_url,
    }
    lists = {"email": _items(email), "sms": _items(sms)}
    patch, errors = _alert_patch(typed, lists)
    updated: Org | None = None
    if patch is not None:
        try:
            updated = await database.run(
                change_settings,
                org_id=me.org.id,
                operator_id=me.operator.id,
                actor=me.operator.name,
                section="alerts",
                changes=patch.model_dump(exclude_unset=True),
                at=utcnow(),
            )
        except ValidationError as error:
            errors = _field_errors(error, lists)
    if updated is None:
        return await _page(
            request,
            me,
            database,
            status_code=422,
            settings_form=typed,
            settings_errors=errors,
            settings_error="Nothing was saved: fix the fields marked below.",
        )
    cache.forget(me.org.id)
    return await _page(request, me, database, org=updated, settings_notice="Alert settings saved.")


def _until(text: str) -> datetime:
    """A ``datetime-local`` value, read as UTC (the pages show times in UTC)."""
    return datetime.fromisoformat(text.strip()).replace(tzinfo=UTC)


@router.post("/alerts/silences")
async def add_silence(
    request: Request,
    me: OperatorSessionDep,
    database: DatabaseDep,
    target: Annotated[str, Form(max_length=120)] = "",
    until: Annotated[str, Form(max_length=40)] = "",
    reason: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    """Hold back the notices of matching alerts until a time, as the signed-in operator."""
    typed = {"target": target, "until": until, "reason": reason}
    rule, _, subject = target.partition("/")
    errors: dict[str, str] = {}
    if rule and rule not in health.CHECKS:
        errors["target"] = "Choose one of the checks listed."
    wanted: SilenceIn | None = None
    try:
        ends = _until(until)
    except ValueError:
        errors["until"] = "Give a date and time."
    else:
        try:
            wanted = SilenceIn(
                rule=rule or None,
                subject=subject or None,
                until=ends,
                reason=reason.strip() or None,
            )
        except ValidationError as error:
            for field, message in _field_errors(error, {}).items():
                errors["target" if field in ("rule", "subject") else field] = message
    if wanted is not None and not errors:
        try:
            made = await actions.silence(
                org_id=me.org.id, wanted=wanted, by=me.operator.name, database=database
            )
        except actions.SilenceTooShort:
            errors["until"] = "must be in the future"
        else:
            return await _page(
                request,
                me,
                database,
                silence_notice=f"Silenced until {made.until:%d %b %H:%M} UTC.",
            )
    return await _page(
        request,
        me,
        database,
        status_code=422,
        silence_form=typed,
        silence_errors=errors,
    )


@router.post("/alerts/silences/{silence_id}/lift")
async def lift(
    request: Request, silence_id: IdParam, me: OperatorSessionDep, database: DatabaseDep
) -> Response:
    """Lift a silence: notices go out again from now on."""
    try:
        await database.run(lift_silence, org_id=me.org.id, silence_id=silence_id)
    except NotFound:
        raise ApiError(404, "No such silence.") from None
    return await _page(
        request, me, database, silence_notice="Silence lifted: notices go out again."
    )
