"""The agents' running totals (``agent_days``): per org, UTC day and metric, moved in the
transaction that records what they count, so ``GET /v1/agents`` adds up a window's whole days
instead of reading every message, call and lead in them (``models.reads.agents``).

What is counted, and on which day:

* ``sent:{channel}:{live|other}``: an AI message the provider accepted (or the dry run
  simulated), on the day the message was written; taken back if a carrier's failure reopens
  it for a retry.
* ``calls:ended``, ``calls:answered``, ``calls:costed`` (reports with a cost) and
  ``calls:cost`` (an amount): a call's end-of-call report, on the day the call was written.
* ``leads:touched``, ``leads:called`` and, of each, ``...:replied`` / ``...:taken_over``: on
  the day the lead came in. The lead's own facts say which (``first_contact_at``,
  ``first_call_at``, ``replied_at``, ``taken_over_at``); each is stamped once, by a
  conditional UPDATE whose RETURNING row is the lead as it is now, so two transactions that
  stamp two facts of one lead at once count each fact once, whichever commits first.

``rebuild`` derives the facts and the totals of an org again from its messages, calls and
threads: for data written around the app (the benchmark's) and to check the running totals.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    Date,
    and_,
    case,
    cast,
    delete,
    false,
    func,
    insert,
    or_,
    type_coerce,
    update,
)
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from models.database import add_up
from models.store import lead_groups
from models.tables import AgentDay, Call, Lead, Message, Thread, UtcDateTime
from models.values import CallOutcome, Direction, ProviderMode, Sender

CALLS_ENDED = "calls:ended"
CALLS_ANSWERED = "calls:answered"
CALLS_COST = "calls:cost"
CALLS_COSTED = "calls:costed"
TOUCHED = "leads:touched"
TOUCHED_REPLIED = "leads:touched:replied"
TOUCHED_TAKEN_OVER = "leads:touched:taken_over"
CALLED = "leads:called"
CALLED_TAKEN_OVER = "leads:called:taken_over"

#: A metric's total over some days: how many, and the sum of its amounts.
Totals = dict[str, tuple[int, float]]


def sent_metric(channel: str, mode: str | None) -> str:
    """The metric of an AI send on ``channel``, live (what costs) or not."""
    return f"sent:{channel}:{'live' if mode == ProviderMode.LIVE else 'other'}"


def utc_day(at: datetime) -> date:
    """The UTC calendar day of ``at``."""
    return at.astimezone(UTC).date()


def add(
    session: Session,
    *,
    org_id: str,
    day: date,
    counts: Mapping[str, int],
    amounts: Mapping[str, float] | None = None,
) -> None:
    """Add ``counts`` (and ``amounts``) to the org's totals of ``day``: one upsert, rows in
    metric order (two transactions adding to the same rows wait in the same order)."""
    amounts = amounts or {}
    metrics = sorted(name for name in {*counts, *amounts} if counts.get(name) or amounts.get(name))
    if not metrics:
        return
    rows = [
        {
            "org_id": org_id,
            "day": day,
            "metric": name,
            "count": counts.get(name, 0),
            "amount": float(amounts.get(name, 0.0)),
        }
        for name in metrics
    ]
    add_up(session, AgentDay, keys=("org_id", "day", "metric"), sums=("count", "amount"), rows=rows)


def totals(session: Session, *, org_id: str, first: date | None, end: date | None) -> Totals:
    """The org's totals over the days ``[first, end)`` (either end open)."""
    query = sa_select(
        col(AgentDay.metric), func.sum(col(AgentDay.count)), func.sum(col(AgentDay.amount))
    ).where(col(AgentDay.org_id) == org_id)
    if first is not None:
        query = query.where(col(AgentDay.day) >= first)
    if end is not None:
        query = query.where(col(AgentDay.day) < end)
    rows = session.execute(query.group_by(col(AgentDay.metric)))
    return {metric: (int(count), float(amount)) for metric, count, amount in rows}


# -- Moved as things happen ----------------------------------------------------------------


def message_sent(session: Session, *, message: Message, sent: bool) -> None:
    """An AI message was accepted (``sent``) or reopened for a retry after it had been."""
    if message.sender != Sender.AI or message.direction != Direction.OUTBOUND:
        return
    add(
        session,
        org_id=message.org_id,
        day=utc_day(message.created_at),
        counts={sent_metric(message.channel, message.mode): 1 if sent else -1},
    )


def call_ended(session: Session, *, call: Call) -> None:
    """A call's end-of-call report was recorded (once per call)."""
    add(
        session,
        org_id=call.org_id,
        day=utc_day(call.created_at),
        counts={
            CALLS_ENDED: 1,
            CALLS_ANSWERED: int(call.outcome == CallOutcome.ANSWERED),
            CALLS_COSTED: int(call.cost is not None),
        },
        amounts={CALLS_COST: call.cost or 0.0},
    )


def lead_touched(session: Session, *, lead_id: str, at: datetime, channel: str) -> bool:
    """The AI's first touch of the lead, at ``at`` on ``channel``; ``False`` if it had one."""
    stamped = _stamp(
        session,
        col(Lead.id) == lead_id,
        col(Lead.first_contact_at).is_(None),
        first_contact_at=at,
        first_contact_channel=channel,
        updated_at=at,
    )
    for lead in stamped:
        # A reply written after ``at`` but committed before this touch found no touch to
        # answer (``contact_replied``): look for it on the thread now.
        reply = session.execute(
            _first_on_thread(
                lead.contact_id,
                col(Message.direction) == Direction.INBOUND,
                col(Message.created_at) > at,
            )
        ).scalar_one()
        replied = reply is not None and bool(
            _stamp(
                session, col(Lead.id) == lead.id, col(Lead.replied_at).is_(None), replied_at=reply
            )
        )
        _count(
            session,
            lead,
            {TOUCHED: 1, TOUCHED_REPLIED: int(replied), TOUCHED_TAKEN_OVER: int(lead.taken_over)},
        )
        # The pipeline's group: the lead as it is now, untouched before.
        after = lead_groups.Group(
            org_id=lead.org_id,
            source=lead.source,
            channel=channel,
            stage=lead.stage,
            touched=True,
            value=lead.value,
        )
        before = dataclasses.replace(after, channel=None, touched=False)
        lead_groups.moved(session, before=before, after=after)
    return bool(stamped)


def lead_created(session: Session, *, lead_id: str) -> None:
    """A lead was written: a person who stepped in on the contact's thread since it came in
    (its ``created_at`` is when intake received it, a moment before its row) took it over.
    Nothing is counted yet: the lead is neither touched nor called."""
    lead = session.get(Lead, lead_id)
    if lead is None:
        return
    human = session.execute(
        _first_on_thread(
            lead.contact_id,
            col(Message.sender) == Sender.HUMAN,
            col(Message.created_at) >= lead.created_at,
        )
    ).scalar_one()
    held = session.execute(
        sa_select(col(Thread.held_since)).where(
            col(Thread.contact_id) == lead.contact_id, col(Thread.held_since) >= lead.created_at
        )
    ).scalar_one_or_none()
    moments = [moment for moment in (human, held) if moment is not None]
    if moments:
        _stamp(session, col(Lead.id) == lead_id, taken_over_at=min(moments))


def _first_on_thread(contact_id: str, *conditions: Any) -> Any:
    """The earliest message on the contact's thread that matches ``conditions`` (off
    ``ix_messages_thread_created``)."""
    return (
        sa_select(type_coerce(func.min(col(Message.created_at)), UtcDateTime()))
        .select_from(Message)
        .join(Thread, col(Thread.id) == col(Message.thread_id))
        .where(col(Thread.contact_id) == contact_id, *conditions)
    )


def lead_called(session: Session, *, lead_id: str, at: datetime) -> None:
    """A call to the lead was placed at ``at``: its first, if it had none."""
    for lead in _stamp(
        session, col(Lead.id) == lead_id, col(Lead.first_call_at).is_(None), first_call_at=at
    ):
        _count(session, lead, {CALLED: 1, CALLED_TAKEN_OVER: int(lead.taken_over)})


def contact_replied(session: Session, *, contact_id: str, at: datetime) -> None:
    """The contact wrote at ``at``: a reply for each of their leads touched before then."""
    stamped = _stamp(
        session,
        col(Lead.contact_id) == contact_id,
        col(Lead.replied_at).is_(None),
        col(Lead.first_contact_at) < at,
        replied_at=at,
    )
    _count_all(session, [(lead, {TOUCHED_REPLIED: 1}) for lead in stamped])


def contact_taken_over(session: Session, *, contact_id: str, at: datetime) -> None:
    """A person stepped in on the contact's thread at ``at`` (wrote, or took it over): each of
    the contact's leads that had come in by then was taken over."""
    stamped = _stamp(
        session,
        col(Lead.contact_id) == contact_id,
        col(Lead.taken_over_at).is_(None),
        col(Lead.created_at) <= at,
        taken_over_at=at,
    )
    _count_all(
        session,
        [
            (lead, {TOUCHED_TAKEN_OVER: int(lead.touched), CALLED_TAKEN_OVER: int(lead.called)})
            for lead in stamped
        ],
    )


class _Stamped:
    """A lead as an UPDATE left it: what its totals need."""

    def __init__(
        self,
        lead_id: str,
        org_id: str,
        contact_id: str,
        created_at: datetime,
        touched: datetime | None,
        called: datetime | None,
        replied: datetime | None,
        taken_over: datetime | None,
        source: str | None,
        stage: str,
        value: float | None,
    ) -> None:
        self.id, self.org_id, self.contact_id = lead_id, org_id, contact_id
        self.day = utc_day(created_at)
        self.touched = touched is not None
        self.called = called is not None
        self.replied = replied is not None
        self.taken_over = taken_over is not None
        self.source, self.stage, self.value = source, stage, value


def _stamp(session: Session, *where: Any, **values: Any) -> list[_Stamped]:
    """``UPDATE leads SET values WHERE where RETURNING`` the leads as they are now (with no
    ``values``, only read)."""
    columns = (
        col(Lead.id),
        col(Lead.org_id),
        col(Lead.contact_id),
        col(Lead.created_at),
        col(Lead.first_contact_at),
        col(Lead.first_call_at),
        col(Lead.replied_at),
        col(Lead.taken_over_at),
        col(Lead.source),
        col(Lead.stage),
        col(Lead.value),
    )
    if not values:
        return [_Stamped(*row) for row in session.execute(sa_select(*columns).where(*where))]
    rows = session.execute(
        update(Lead).where(*where).values(**values).returning(*columns),
        execution_options={"synchronize_session": "fetch"},
    ).all()
    return [_Stamped(*row) for row in rows]


def _count(session: Session, lead: _Stamped, counts: dict[str, int]) -> None:
    add(session, org_id=lead.org_id, day=lead.day, counts=counts)


def _count_all(session: Session, counted: list[tuple[_Stamped, dict[str, int]]]) -> None:
    """Several leads' counts, added up per day and written day by day in order: two
    transactions that count leads of the same days take those rows in the same order."""
    by_day: dict[tuple[str, date], dict[str, int]] = {}
    for lead, counts in counted:
        totals = by_day.setdefault((lead.org_id, lead.day), {})
        for metric, n in counts.items():
            totals[metric] = totals.get(metric, 0) + n
    for (org_id, day), counts in sorted(by_day.items()):
        add(session, org_id=org_id, day=day, counts=counts)


# -- Derived again ------------------------------------------------------------------------


def rebuild(session: Session, *, org_id: str) -> None:
    """Derive the org's lead facts (``derive_facts``) and totals again from its rows."""
    postgres = _is_postgres(session)
    derive_facts(session, col(Lead.org_id) == org_id)
    session.execute(delete(AgentDay).where(col(AgentDay.org_id) == org_id))
    rows: list[dict[str, Any]] = []
    for day, metric, count, amount in _derived(session, org_id=org_id, postgres=postgres):
        if count or amount:
            rows.append(
                {
                    "org_id": org_id,
                    "day": day if isinstance(day, date) else date.fromisoformat(day),
                    "metric": metric,
                    "count": int(count),
                    "amount": float(amount or 0),
                }
            )
    if rows:
        session.execute(insert(AgentDay), rows)
    session.expire_all()


def refresh_contact(session: Session, *, contact_id: str) -> None:
    """A merge moved leads and messages onto the contact: stamp what its leads' facts now
    say (a reply or a person's message on the thread they share now), counted."""
    before = {
        lead_id: (replied, taken_over)
        for lead_id, replied, taken_over in session.execute(
            sa_select(col(Lead.id), col(Lead.replied_at), col(Lead.taken_over_at)).where(
                col(Lead.contact_id) == contact_id
            )
        )
    }
    derive_facts(session, col(Lead.contact_id) == contact_id)
    counted = []
    for lead in _stamp(session, col(Lead.contact_id) == contact_id):
        replied, taken_over = before.get(lead.id, (None, None))
        newly_taken_over = lead.taken_over and taken_over is None
        counts = {
            TOUCHED_REPLIED: int(lead.touched and lead.replied and replied is None),
            TOUCHED_TAKEN_OVER: int(lead.touched and newly_taken_over),
            CALLED_TAKEN_OVER: int(lead.called and newly_taken_over),
        }
        counted.append((lead, counts))
    _count_all(session, counted)


def derive_facts(session: Session, *where: Any) -> None:
    """Stamp the facts of the leads ``where`` from the rows, keeping any stamp already made
    (a fact is never taken back: a hold released since leaves no row but was a takeover).

    A lead's first call is its calls' earliest ``placed_at``; its reply, the contact's first
    message on their thread after the first touch; its takeover, the first person's message
    on the thread since the lead came in, or the thread's hold if that began since then.
    """
    postgres = _is_postgres(session)

    def on_thread(*conditions: Any) -> Any:
        """The earliest message on the lead's contact's thread that matches ``conditions``."""
        return (
            sa_select(func.min(col(Message.created_at)))
            .select_from(Message)
            .join(Thread, col(Thread.id) == col(Message.thread_id))
            .where(col(Thread.contact_id) == col(Lead.contact_id), *conditions)
            .scalar_subquery()
        )

    first_call = (
        sa_select(func.min(col(Call.placed_at)))
        .where(col(Call.lead_id) == col(Lead.id), col(Call.placed_at).is_not(None))
        .scalar_subquery()
    )
    replied = on_thread(
        col(Message.direction) == Direction.INBOUND,
        col(Message.created_at) > col(Lead.first_contact_at),
    )
    human = on_thread(
        col(Message.sender) == Sender.HUMAN, col(Message.created_at) >= col(Lead.created_at)
    )
    held = (
        sa_select(col(Thread.held_since))
        .where(
            col(Thread.contact_id) == col(Lead.contact_id),
            col(Thread.held_since) >= col(Lead.created_at),
        )
        .scalar_subquery()
    )

    def earliest(*moments: Any) -> Any:
        """The earliest of ``moments`` that are not NULL (NULL if none is)."""
        if postgres:
            return func.least(*moments)
        # SQLite's min() of several values is NULL if any is: each term puts another
        # moment first, so every term is one of the moments and the smallest is among them.
        return func.min(*(func.coalesce(*moments[k:], *moments[:k]) for k in range(len(moments))))

    session.execute(
        update(Lead)
        .where(*where)
        .values(
            first_call_at=earliest(col(Lead.first_call_at), first_call),
            replied_at=earliest(col(Lead.replied_at), replied),
            taken_over_at=earliest(col(Lead.taken_over_at), human, held),
        ),
        execution_options={"synchronize_session": "fetch"},
    )


def _derived(session: Session, *, org_id: str, postgres: bool) -> Iterable[tuple[Any, ...]]:
    """``(day, metric, count, amount)`` of every total, from the rows themselves."""

    def by_day(moment: Any, *columns: Any, where: Any) -> Any:
        """``columns`` of the rows ``where`` with their UTC day, named in a subquery (grouped
        by that name: PostgreSQL can't tell two bound copies of the zone are the same)."""
        day = cast(func.timezone("UTC", moment), Date) if postgres else func.substr(moment, 1, 10)
        return sa_select(day.label("day"), *columns).where(where).subquery()

    def flag(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    messages = by_day(
        col(Message.created_at),
        col(Message.channel).label("channel"),
        # An old row without a mode is not live (``sent_metric``): one group with them.
        func.coalesce(col(Message.mode) == ProviderMode.LIVE, false()).label("live"),
        where=and_(
            col(Message.org_id) == org_id,
            col(Message.sender) == Sender.AI,
            col(Message.direction) == Direction.OUTBOUND,
            col(Message.sent_at).is_not(None),
        ),
    )
    keys = (messages.c.day, messages.c.channel, messages.c.live)
    for day, channel, live, count in session.execute(
        sa_select(*keys, func.count()).group_by(*keys)
    ):
        yield day, sent_metric(channel, ProviderMode.LIVE if live else None), count, 0.0

    calls = by_day(
        col(Call.created_at),
        col(Call.outcome).label("outcome"),
        col(Call.cost).label("cost"),
        where=col(Call.org_id) == org_id,
    )
    for day, ended, answered, costed, cost in session.execute(
        sa_select(
            calls.c.day,
            func.count(calls.c.outcome),
            flag(calls.c.outcome == CallOutcome.ANSWERED),
            func.count(calls.c.cost),
            func.coalesce(func.sum(calls.c.cost), 0),
        ).group_by(calls.c.day)
    ):
        yield day, CALLS_ENDED, ended, 0.0
        yield day, CALLS_ANSWERED, answered, 0.0
        yield day, CALLS_COSTED, costed, 0.0
        yield day, CALLS_COST, 0, cost

    touched, called = col(Lead.first_contact_at).is_not(None), col(Lead.first_call_at).is_not(None)
    taken_over = col(Lead.taken_over_at).is_not(None)
    leads = by_day(
        col(Lead.created_at),
        case((touched, 1), else_=0).label("touched"),
        case((and_(touched, col(Lead.replied_at).is_not(None)), 1), else_=0).label("replied"),
        case((and_(touched, taken_over), 1), else_=0).label("touched_taken_over"),
        case((called, 1), else_=0).label("called"),
        case((and_(called, taken_over), 1), else_=0).label("called_taken_over"),
        where=and_(col(Lead.org_id) == org_id, or_(touched, called)),
    )
    names = {
        TOUCHED: leads.c.touched,
        TOUCHED_REPLIED: leads.c.replied,
        TOUCHED_TAKEN_OVER: leads.c.touched_taken_over,
        CALLED: leads.c.called,
        CALLED_TAKEN_OVER: leads.c.called_taken_over,
    }
    for day, *counts in session.execute(
        sa_select(leads.c.day, *(func.sum(column) for column in names.values())).group_by(
            leads.c.day
        )
    ):
        for name, count in zip(names, counts, strict=True):
            yield day, name, count, 0.0


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"
