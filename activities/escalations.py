"""The escalation ladder's database step: who is told at each level, and the SLA."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from temporalio import activity

from activities.records import recording
from models import attention
from models.attention import Routing


@dataclass(frozen=True, kw_only=True)
class RouteInput:
    """Route escalation ``escalation_id`` at ``level`` (0 when it opens, +1 per SLA missed)."""

    org_id: str
    escalation_id: str
    level: int
    #: The workflow's time: whose heartbeat counts as online, and where the SLA starts.
    now: datetime


class EscalationActivities:
    """Routes escalations in the org's database."""

    def __init__(self, *, engine: Engine) -> None:
        """Read and write through ``engine``."""
        self._engine = engine

    @activity.defn(name="route_escalation")
    def route_escalation(self, input: RouteInput) -> Routing:
        """The next person to tell (an online operator, else the owner past level 0), the
        new SLA, and the step on the lead's timeline."""
        with recording(self._engine) as session:
            return attention.route(
                session,
                org_id=input.org_id,
                escalation_id=input.escalation_id,
                level=input.level,
                now=input.now,
            )
