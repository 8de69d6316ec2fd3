"""Health and alerts as the API shows them (API.md "Health and alerts")."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from models.schemas.fields import Text
from models.values import AlertState, HealthStatus


class HealthCheckOut(BaseModel):
    """The latest verdict of one check on one subject."""

    check: str
    subject: str
    status: HealthStatus
    summary: str
    detail: str
    checked_at: datetime | None


class HealthReport(BaseModel):
    """``GET /v1/health``: the latest verdict of every check, the worst first."""

    checks: list[HealthCheckOut]


class AlertNotification(BaseModel):
    """One notice of an alert: where it went and what became of it (``silenced``,
    ``over_quota`` and ``no_contact`` were never sent; otherwise the message's status)."""

    channel: str
    to: str | None
    at: datetime
    status: str


class AlertOut(BaseModel):
    """An alert episode."""

    alert_id: str
    rule: str
    subject: str
    severity: HealthStatus
    state: AlertState
    summary: str
    detail: str
    #: Text ``ACK <code>`` from an alert contact's phone to acknowledge.
    code: str
    opened_at: datetime
    fired_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    notifications: list[AlertNotification]


class AlertList(BaseModel):
    """``GET /v1/alerts``: newest first, a page at a time."""

    items: list[AlertOut]
    next_cursor: str | None


class SilenceIn(BaseModel):
    """``POST /v1/silences``: hold back notices of matching alerts until ``until``; with a
    later ``starts_at``, a maintenance window. No ``rule`` / ``subject``: every alert."""

    model_config = ConfigDict(extra="forbid")

    rule: Text | None = Field(default=None, min_length=1, max_length=32)
    subject: Text | None = Field(default=None, min_length=1, max_length=64)
    starts_at: datetime | None = Field(default=None, description="Default: now.")
    until: datetime = Field(description="Must be in the future and after starts_at.")
    reason: Text | None = Field(default=None, max_length=300)


class SilenceOut(BaseModel):
    """A silence or maintenance window."""

    id: str
    rule: str | None
    subject: str | None
    starts_at: datetime
    until: datetime
    reason: str | None
    created_by: str | None
    created_at: datetime


class SilenceList(BaseModel):
    """``GET /v1/silences``: those not yet over."""

    items: list[SilenceOut]
