"""Human handoff's database steps: who an escalation reaches at each level (and its SLA),
and where a takeover stands (releasing one left idle)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from temporalio import activity

from activities.errors import RecordMissing
from activities.records import record
from models.rules.escalations import Routing
from models.services import escalations as escalation_service
from models.services.takeover import expire_if_idle


@dataclass(frozen=True, kw_only=True)
class RouteInput:
    """Route escalation ``escalation_id`` at ``level`` (0 when it opens, +1 per SLA missed)."""

    org_id: str
    escalation_id: str
    level: int
    #: The workflow's time: whose heartbeat counts as online, and where the SLA starts.
    now: datetime


@dataclass(frozen=True, kw_only=True)
class CheckTakeoverInput:
    """Where thread ``thread_id``'s takeover stands at ``now`` (the workflow's time)."""

    org_id: str
    thread_id: str
    now: datetime


@dataclass(frozen=True, kw_only=True)
class TakeoverCheck:
    """A thread's takeover as its workflow sees it: who holds it (``None``: nobody, the AI
    has it), until when unless they write again, the leads to tell, and a notice to deliver
    (a hold that ran out)."""

    held_by: str | None
    releases_at: datetime | None
    lead_workflows: list[str]
    notice_id: str | None


class EscalationActivities:
    """Routes escalations and keeps takeovers in the org's database."""

    def __init__(self, *, engine: Engine) -> None:
        """Read and write through ``engine``."""
        self._engine = engine

    @activity.defn(name="route_escalation")
    def route_escalation(self, input: RouteInput) -> Routing:
        """The next person to tell (an online operator, else the owner past level 0), the
        new SLA, and the step on the lead's timeline."""
        return record(
            self._engine,
            escalation_service.route_escalation,
            org_id=input.org_id,
            escalation_id=input.escalation_id,
            level=input.level,
            now=input.now,
        )

    @activity.defn(name="check_takeover")
    def check_takeover(self, input: CheckTakeoverInput) -> TakeoverCheck:
        """The thread's hold, released first if its operator has written nothing for the
        org's ``takeover_timeout`` (with a notice to them and a timeline entry)."""
        try:
            checked = record(
                self._engine,
                expire_if_idle,
                org_id=input.org_id,
                thread_id=input.thread_id,
                now=input.now,
            )
        except RecordMissing:
            # The thread is gone (merged into another contact's): nothing holds it now, and
            # the leads the workflow paused are released.
            return TakeoverCheck(held_by=None, releases_at=None, lead_workflows=[], notice_id=None)
        hold = checked.hold
        return TakeoverCheck(
            held_by=hold.held_by,
            releases_at=hold.releases_at,
            lead_workflows=hold.lead_workflows,
            notice_id=checked.notice_id,
        )
