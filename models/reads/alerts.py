"""Alerts, silences and the health report, as the API and the pages show them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import tuple_
from sqlmodel import Session, col, select

from models.errors import NotFound
from models.reads.paging import decode_cursor, encode_cursor
from models.rules import health
from models.schemas.health import (
    AlertNotification,
    AlertOut,
    HealthCheckOut,
    SilenceOut,
)
from models.store.alerts import latest_samples
from models.tables import Alert, AlertNotice, Message, Silence
from models.values import AlertState, HealthStatus

#: ``state`` filters of ``GET /v1/alerts``: open means not resolved.
STATES: dict[str, tuple[AlertState, ...]] = {
    "open": (AlertState.FIRING, AlertState.ACKNOWLEDGED, AlertState.RECOVERING),
    "acknowledged": (AlertState.ACKNOWLEDGED,),
    "resolved": (AlertState.RESOLVED,),
}
_ORDER = (HealthStatus.CRITICAL, HealthStatus.WARNING, HealthStatus.UNKNOWN, HealthStatus.OK)


def health_report(
    session: Session, *, org_id: str, now: datetime, interval: timedelta
) -> list[HealthCheckOut]:
    """The latest verdict of every check the org sees, the worst first; with whether the
    checks themselves still run (no run for two intervals is critical)."""
    samples = latest_samples(session, org_id=org_id)
    last_run = max((s.checked_at for s in samples if s.org_id == ""), default=None)
    running = health.checks_running_verdict(
        health.ChecksRunning(last_run_at=last_run, interval=interval), now=now
    )
    checks = [
        HealthCheckOut(
            check=running.check,
            subject=running.subject,
            status=running.status,
            summary=running.summary,
            detail=running.detail,
            checked_at=now,
        )
    ] + [
        HealthCheckOut(
            check=s.check,
            subject=s.subject,
            status=HealthStatus(s.status),
            summary=s.summary,
            detail=s.detail,
            checked_at=s.checked_at,
        )
        for s in samples
    ]
    return sorted(checks, key=lambda c: (_ORDER.index(c.status), c.check, c.subject))


def alert_out(session: Session, alert: Alert) -> AlertOut:
    """The alert with its notices (a sent one's status is its message's)."""
    notices = session.exec(
        select(AlertNotice, Message.status)
        .outerjoin(Message, col(Message.id) == col(AlertNotice.message_id))
        .where(AlertNotice.alert_id == alert.id)
        .order_by(col(AlertNotice.created_at), col(AlertNotice.step))
    ).all()
    return AlertOut(
        alert_id=alert.id,
        rule=alert.rule,
        subject=alert.subject,
        severity=HealthStatus(alert.severity),
        state=AlertState(alert.state),
        summary=alert.summary,
        detail=alert.detail,
        code=alert.code,
        opened_at=alert.opened_at,
        fired_at=alert.fired_at,
        acknowledged_at=alert.acknowledged_at,
        acknowledged_by=alert.acknowledged_by,
        resolved_at=alert.resolved_at,
        notifications=[
            AlertNotification(
                channel=notice.channel,
                to=notice.to_address,
                at=notice.created_at,
                status=status if notice.outcome == "sent" and status else notice.outcome,
            )
            for notice, status in notices
        ],
    )


def list_alerts(
    session: Session,
    *,
    org_id: str,
    state: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[AlertOut], str | None]:
    """The org's alerts that fired, newest first (keyset pages); ``state``: ``STATES``."""
    statement = select(Alert).where(Alert.org_id == org_id, col(Alert.fired_at).is_not(None))
    if state is not None:
        statement = statement.where(col(Alert.state).in_(STATES[state]))
    if cursor:
        at, alert_id = decode_cursor(cursor, kinds=("time", "id"))
        statement = statement.where(
            tuple_(col(Alert.opened_at), col(Alert.id)) < tuple_(at, alert_id)
        )
    rows = session.exec(
        statement.order_by(col(Alert.opened_at).desc(), col(Alert.id).desc()).limit(limit + 1)
    ).all()
    page = list(rows[:limit])
    next_cursor = encode_cursor([page[-1].opened_at, page[-1].id]) if len(rows) > limit else None
    return [alert_out(session, alert) for alert in page], next_cursor


def alert_view(session: Session, *, org_id: str, alert_id: str) -> AlertOut:
    """One of the org's alerts; ``NotFound`` for another org's, or one that never fired."""
    alert = session.get(Alert, alert_id)
    if alert is None or alert.org_id != org_id or alert.fired_at is None:
        raise NotFound(alert_id)
    return alert_out(session, alert)


def workflow_of_alert(session: Session, *, org_id: str, alert_id: str) -> str:
    """The id of the ``Alert`` workflow an alert episode belongs to."""
    alert = session.get(Alert, alert_id)
    if alert is None or alert.org_id != org_id:
        raise NotFound(alert_id)
    return alert.workflow_id


def silence_out(silence: Silence) -> SilenceOut:
    """A silence as the API shows it."""
    return SilenceOut(
        id=silence.id,
        rule=silence.rule,
        subject=silence.subject,
        starts_at=silence.starts_at,
        until=silence.until,
        reason=silence.reason,
        created_by=silence.created_by,
        created_at=silence.created_at,
    )


def silences(session: Session, *, org_id: str, now: datetime) -> Sequence[SilenceOut]:
    """The org's silences not yet over, the soonest to end first."""
    rows = session.exec(
        select(Silence)
        .where(Silence.org_id == org_id, col(Silence.until) > now)
        .order_by(col(Silence.until), col(Silence.id))
    ).all()
    return [silence_out(row) for row in rows]


def silence_view(session: Session, *, org_id: str, silence_id: str) -> SilenceOut:
    """One of the org's silences; ``NotFound`` otherwise."""
    silence = session.get(Silence, silence_id)
    if silence is None or silence.org_id != org_id:
        raise NotFound(silence_id)
    return silence_out(silence)
