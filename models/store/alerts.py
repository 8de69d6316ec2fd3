"""Alerts, their notices, silences and the health samples the checks store."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from models.errors import NotFound
from models.tables import Alert, AlertNotice, HealthSample, Operator, Silence
from models.values import OperatorRole

#: A notice that went out (its message row says whether it arrived).
SENT = "sent"
SILENCED = "silenced"
OVER_QUOTA = "over_quota"
NO_CONTACT = "no_contact"


def get_alert(session: Session, *, org_id: str, alert_id: str) -> Alert:
    """The org's alert; ``NotFound`` for another org's or none."""
    alert = session.get(Alert, alert_id)
    if alert is None or alert.org_id != org_id:
        raise NotFound(alert_id)
    return alert


def notices_of(session: Session, *, alert_id: str) -> list[AlertNotice]:
    """An alert's notices, oldest first."""
    return list(
        session.exec(
            select(AlertNotice)
            .where(AlertNotice.alert_id == alert_id)
            .order_by(col(AlertNotice.created_at), col(AlertNotice.step))
        ).all()
    )


def notice_at_step(session: Session, *, alert_id: str, step: str) -> AlertNotice | None:
    """The notice recorded for ``step`` of the alert, if any (a retried notice finds it)."""
    return session.exec(
        select(AlertNotice).where(AlertNotice.alert_id == alert_id, AlertNotice.step == step)
    ).first()


def sms_notices_since(session: Session, *, org_id: str, since: datetime) -> int:
    """Alert texts the org has sent since ``since`` (what the monthly quota counts)."""
    return int(
        session.exec(
            select(func.count())
            .select_from(AlertNotice)
            .where(
                AlertNotice.org_id == org_id,
                AlertNotice.channel == "sms",
                AlertNotice.outcome == SENT,
                col(AlertNotice.created_at) >= since,
            )
        ).one()
    )


def active_silence(
    session: Session, *, org_id: str, rule: str, subject: str, at: datetime
) -> Silence | None:
    """A silence (or maintenance window) covering the rule and subject at ``at``."""
    return session.exec(
        select(Silence)
        .where(
            Silence.org_id == org_id,
            col(Silence.starts_at) <= at,
            col(Silence.until) > at,
            or_(col(Silence.rule).is_(None), col(Silence.rule) == rule),
            or_(col(Silence.subject).is_(None), col(Silence.subject) == subject),
        )
        .order_by(col(Silence.until).desc())
    ).first()


def owner_of(session: Session, *, org_id: str) -> Operator | None:
    """The org's first owner still on the team (the default alert contact)."""
    return session.exec(
        select(Operator)
        .where(
            Operator.org_id == org_id,
            Operator.role == OperatorRole.OWNER,
            col(Operator.removed_at).is_(None),
        )
        .order_by(col(Operator.created_at), col(Operator.id))
    ).first()


def latest_samples(session: Session, *, org_id: str) -> list[HealthSample]:
    """The latest sample of every check and subject the org sees: its own, and the
    deployment's (``org_id`` empty)."""
    latest = (
        select(
            HealthSample.org_id,
            HealthSample.check,
            HealthSample.subject,
            func.max(HealthSample.checked_at).label("at"),
        )
        .where(col(HealthSample.org_id).in_(["", org_id]))
        .group_by(col(HealthSample.org_id), col(HealthSample.check), col(HealthSample.subject))
        .subquery()
    )
    rows = session.exec(
        select(HealthSample)
        .join(
            latest,
            (col(HealthSample.org_id) == latest.c.org_id)
            & (col(HealthSample.check) == latest.c.check)
            & (col(HealthSample.subject) == latest.c.subject)
            & (col(HealthSample.checked_at) == latest.c.at),
        )
        .order_by(col(HealthSample.check), col(HealthSample.subject))
    ).all()
    seen: set[tuple[str, str]] = set()
    samples = []
    for row in rows:  # two samples of one run at the same instant: keep one
        if (row.check, row.subject) not in seen:
            seen.add((row.check, row.subject))
            samples.append(row)
    return samples
