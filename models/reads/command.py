"""The Command Center's "now": what the AI is doing at this moment, in counts a busy owner
reads at a glance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from models.rules.escalations import OPEN_STATUSES
from models.tables import Call, Contact, Escalation, Lead, Thread, TimelineEvent
from models.values import HandledBy, ThreadStatus

#: How many of the latest timeline entries the Command Center lists.
RECENT = 12


@dataclass(frozen=True)
class Activity:
    """One recent thing keepwarm did or saw, for the Command Center's feed."""

    at: datetime
    kind: str
    summary: str
    lead_id: str
    name: str | None


@dataclass(frozen=True)
class NowSummary:
    """Counts for the Command Center, and the sentence that says them."""

    ai_threads: int
    held_threads: int
    unread: int
    attention: int
    breached: int
    leads_today: int
    calls_today: int
    recent: list[Activity]

    @property
    def sentence(self) -> str:
        """ "Handling 3 conversations · 2 calls today · 1 waiting for a person"."""

        def many(n: int, one: str, more: str) -> str:
            return f"{n} {one if n == 1 else more}"

        parts = [f"Handling {many(self.ai_threads, 'conversation', 'conversations')}"]
        parts.append(many(self.calls_today, "call today", "calls today"))
        parts.append(
            f"{self.attention} waiting for a person" if self.attention else "nobody waiting"
        )
        if self.held_threads:
            parts.append(f"{self.held_threads} held by your team")
        return " · ".join(parts)


def _count(session: Session, statement: object) -> int:
    return int(session.exec(statement).one())  # type: ignore[call-overload]


def now_summary(session: Session, *, org_id: str, now: datetime) -> NowSummary:
    """The org's Command Center counts at ``now`` (today: since 00:00 UTC)."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    threads = select(func.count()).select_from(Thread).where(col(Thread.org_id) == org_id)
    open_escalations = (
        select(func.count())
        .select_from(Escalation)
        .where(col(Escalation.org_id) == org_id, col(Escalation.status).in_(OPEN_STATUSES))
    )
    return NowSummary(
        ai_threads=_count(
            session,
            threads.where(
                col(Thread.handled_by) == HandledBy.AI,
                col(Thread.status) != ThreadStatus.RESOLVED,
            ),
        ),
        held_threads=_count(session, threads.where(col(Thread.held_by).is_not(None))),
        unread=_count(session, threads.where(col(Thread.status) == ThreadStatus.UNREAD)),
        attention=_count(session, open_escalations),
        breached=_count(session, open_escalations.where(col(Escalation.sla_due_at) <= now)),
        leads_today=_count(
            session,
            select(func.count())
            .select_from(Lead)
            .where(col(Lead.org_id) == org_id, col(Lead.created_at) >= midnight),
        ),
        recent=_recent(session, org_id=org_id),
        calls_today=_count(
            session,
            select(func.count())
            .select_from(Call)
            .where(col(Call.org_id) == org_id, col(Call.created_at) >= midnight),
        ),
    )


def _recent(session: Session, *, org_id: str) -> list[Activity]:
    rows = session.exec(
        select(TimelineEvent, Contact.name)
        .join(Lead, col(Lead.id) == col(TimelineEvent.lead_id))
        .join(Contact, col(Contact.id) == col(Lead.contact_id))
        .where(col(TimelineEvent.org_id) == org_id)
        .order_by(col(TimelineEvent.at).desc(), col(TimelineEvent.id).desc())
        .limit(RECENT)
    ).all()
    return [
        Activity(
            at=event.at, kind=event.kind, summary=event.summary, lead_id=event.lead_id, name=name
        )
        for event, name in rows
    ]
