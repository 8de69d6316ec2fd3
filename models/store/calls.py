"""Calls: a lead's call history, the org's answered calls by part of the local day, a call's
status, and when a contact was last touched or called (what the budget and the cap count)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, func
from sqlmodel import Session, col, select

from models.errors import NotFound
from models.rules.calls import RINGING_OUTCOMES, AnswerCounts, CallCell, Tally, cell_of
from models.store import agent_days
from models.store.timeline import add_to_timeline
from models.tables import (
    Call,
    Lead,
    Message,
    utcnow,
)
from models.values import (
    CallOutcome,
    CallStatus,
    Direction,
    MessageStatus,
    Sender,
    TimelineKind,
)


def mark_call(
    session: Session,
    *,
    call_id: str,
    status: CallStatus | None = None,
    provider_call_id: str | None = None,
    error: str | None = None,
    attempted: bool = False,
) -> Call:
    """Move a call along: attempted (about to dial), placed (Vapi's id) or failed."""
    call = session.get(Call, call_id)
    if call is None:
        raise NotFound(call_id)
    now = utcnow()
    if attempted and call.attempted_at is None:
        call.attempted_at = now
    if provider_call_id and call.provider_call_id is None:
        call.provider_call_id = provider_call_id
        call_placed(session, call=call, at=now)
    if status is not None and call.status in {CallStatus.PENDING, CallStatus.QUEUED}:
        call.status = status
        if error:
            call.error = error[:500]
        if call.lead_id and status in {CallStatus.QUEUED, CallStatus.SIMULATED}:
            add_to_timeline(
                session,
                org_id=call.org_id,
                lead_id=call.lead_id,
                kind=TimelineKind.CALL,
                summary=f"Call {'simulated' if status == CallStatus.SIMULATED else 'placed'} "
                f"(attempt {call.attempt})",
                data={"call_id": call.id, "status": status.value},
            )
    session.add(call)
    session.flush()
    return call


def call_placed(session: Session, *, call: Call, at: datetime) -> None:
    """The provider took the call (unless it was placed already): its lead's first call, if
    it is the lead's first."""
    if call.placed_at is not None:
        return
    call.placed_at = at
    if call.lead_id:
        agent_days.lead_called(session, lead_id=call.lead_id, at=at)


#: A message that failed did not reach the person, so it doesn't use up the budget.
NOT_TOUCHED = (MessageStatus.FAILED.value,)


def touches_since(session: Session, *, contact_id: str, since: datetime) -> list[datetime]:
    """When the contact was touched (automated messages that went out, and calls), oldest
    first."""
    messages = session.exec(
        select(Message.touched_at)
        .join(Lead, col(Lead.id) == col(Message.lead_id))
        .where(
            Lead.contact_id == contact_id,
            Message.direction == Direction.OUTBOUND.value,
            Message.sender == Sender.AI.value,
            col(Message.status).not_in(NOT_TOUCHED),
            col(Message.touched_at) > since,
        )
    )
    return sorted(
        [
            *(m for m in messages if m is not None),
            *calls_since(session, contact_id=contact_id, since=since),
        ]
    )


def calls_since(session: Session, *, contact_id: str, since: datetime) -> list[datetime]:
    """When the contact was called (calls the gate let through that did not fail to start),
    oldest first: what the per-subject call cap counts."""
    rows = session.exec(
        select(Call.touched_at)
        .join(Lead, col(Lead.id) == col(Call.lead_id))
        .where(
            Lead.contact_id == contact_id,
            col(Call.status) != CallStatus.FAILED.value,
            col(Call.touched_at) > since,
        )
        .order_by(col(Call.touched_at))
    )
    return [moment for moment in rows if moment is not None]


def answer_counts(session: Session, *, org_id: str) -> AnswerCounts:
    """The org's calls that rang (``RINGING_OUTCOMES``) and how many were answered: pooled, and
    by cell (part of the recipient's local day, weekday or weekend) where the call's local hour
    and weekday were recorded (older calls have no weekday: they count only in the pool)."""
    answered = func.sum(case((col(Call.outcome) == CallOutcome.ANSWERED.value, 1), else_=0))
    rows = session.exec(
        select(col(Call.local_hour), col(Call.local_weekday), answered, func.count())
        .where(
            Call.org_id == org_id,
            col(Call.outcome).in_([outcome.value for outcome in RINGING_OUTCOMES]),
        )
        .group_by(col(Call.local_hour), col(Call.local_weekday))
    ).all()
    pooled = Tally()
    cells: dict[CallCell, Tally] = {}
    for hour, weekday, hits, calls in rows:
        tally = Tally(answered=int(hits or 0), calls=int(calls))
        pooled += tally
        if hour is not None and weekday is not None:
            cell = cell_of(hour, weekday)
            cells[cell] = cells.get(cell, Tally()) + tally
    return AnswerCounts(pooled=pooled, cells=cells)


def call_history(session: Session, *, org_id: str, lead_id: str) -> list[Call]:
    """The lead's calls, oldest first (none of another org's)."""
    return list(
        session.exec(
            select(Call)
            .where(Call.org_id == org_id, Call.lead_id == lead_id)
            .order_by(col(Call.created_at), col(Call.attempt), col(Call.id))
        )
    )


def call_of(session: Session, *, org_id: str, call_id: str) -> Call:
    """One of the org's calls (``NotFound`` otherwise)."""
    call = session.get(Call, call_id)
    if call is None or call.org_id != org_id:
        raise NotFound(call_id)
    return call
