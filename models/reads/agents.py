"""The AI agents an org runs: the texting and email agent of its sequences and its voice
assistant, with what each is doing now and how it did in a window (``GET /v1/agents``).

Every figure is aggregated by the database: a handful of queries per agent, each reading an
index range (the window's messages, leads or calls; the threads active in the last day; the
few calls without an outcome), never every row. docs/api.md ("Agents") defines each figure;
the constants below are the numbers those definitions name.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    or_,
    true,
    type_coerce,
)
from sqlalchemy import select as sa_select
from sqlalchemy.orm import aliased
from sqlalchemy.sql import Subquery
from sqlmodel import Session, col

from models.reads.pipeline import SORT_AT_MOST, WALK_SHARE, kth_wait
from models.reads.revenue import for_aggregates
from models.rules.escalations import OPEN_STATUSES
from models.rules.needs_person import SENTIMENT_CHARS, sentiment
from models.schemas import (
    AgentError,
    AgentKind,
    AgentList,
    AgentStatus,
    AgentSummary,
    OrgSettings,
    Quantiles,
)
from models.store import agent_days
from models.store.agent_days import utc_day
from models.store.orgs import settings_for
from models.tables import Call, Escalation, Lead, Message, Thread, UtcDateTime
from models.values import (
    CLOSED_STAGES,
    CallOutcome,
    CallStatus,
    Channel,
    Direction,
    EscalationReason,
    HandledBy,
    MessageStatus,
    ProviderHealth,
    ProviderMode,
    Sender,
    ThreadStatus,
    WebhookProvider,
)

MESSAGING_AGENT = "Texting & email AI"
VOICE_AGENT = "Voice AI"
#: A thread the AI handles counts as a conversation under way while it has moved (a message,
#: or its opening) within this long.
ACTIVE_WITHIN = timedelta(hours=24)
#: A placed call without its end-of-call report counts as under way for this long (Vapi's
#: report comes within minutes of the hang-up; a lost one is looked up after 30 minutes).
CALL_UNDER_WAY_WITHIN = timedelta(hours=1)
#: A provider failure this recent, with no send accepted since, puts the agent in ``error``.
ERROR_WITHIN = timedelta(hours=1)
#: How far back the latest provider failure is looked for. A message row is written when its
#: send is claimed and may fail later (retries run up to the send deadline, quiet hours defer
#: it), so failures are read among the rows written in the last two days.
ERROR_LOOKBACK = timedelta(days=2)
#: Error classes that say the provider or the account is in trouble (``activities.errors``
#: prefixes every recorded error with its class); a ``business_refusal`` is one request's.
PROVIDER_TROUBLE = (
    ProviderHealth.CREDENTIALS_REJECTED,
    ProviderHealth.SUSPENDED,
    ProviderHealth.DOWN,
)
#: Satisfaction is the mean over at most this many of the window's latest customer replies.
#: Each reply's sentiment (VADER) is scored when it is recorded (``messages.sentiment``); a
#: row without one (from before, or written another way) is scored here, in Python.
SATISFACTION_SAMPLE = 200
#: Reply times are measured on at most this many of the window's latest customer messages
#: (each needs a look for the AI's next touch on its thread).
REPLY_SAMPLE = 500
#: Call outcomes after which the call-retry loop tries again (``workflows.calls``).
RETRIED_OUTCOMES = (
    CallOutcome.NO_ANSWER,
    CallOutcome.BUSY,
    CallOutcome.VOICEMAIL,
    CallOutcome.FAILED,
)
#: Channels the messaging agent writes on.
MESSAGING_CHANNELS = (Channel.SMS, Channel.WHATSAPP, Channel.EMAIL)
#: Whose API each channel's sends go through.
PROVIDER_OF: dict[str, WebhookProvider] = {
    Channel.SMS: WebhookProvider.TWILIO,
    Channel.WHATSAPP: WebhookProvider.TWILIO,
    Channel.EMAIL: WebhookProvider.RESEND,
    Channel.VOICE: WebhookProvider.VAPI,
}
#: Vapi reports a call's cost in US dollars.
VAPI_CURRENCY = "USD"


def agents(
    session: Session,
    *,
    org_id: str,
    start: datetime | None,
    end: datetime | None,
    now: datetime,
) -> AgentList:
    """The org's agents at ``now``, with their figures for ``[start, end)`` (either end open).

    The messaging agent is always listed (every org has sequences); the voice agent when the
    org has set a Vapi assistant or has placed calls. Calls don't record their assistant, so
    an org has one voice agent, named after the assistant it has set.
    """
    settings = settings_for(session, org_id=org_id)
    for_aggregates(session)
    window = _Window(start=start, end=end, postgres=_is_postgres(session))
    has_calls = session.execute(
        sa_select(col(Call.id)).where(col(Call.org_id) == org_id).limit(1)
    ).first()
    voice = bool(settings.vapi_assistant_id) or has_calls is not None
    counted = _totals(session, org_id=org_id, window=window)
    cohorts = _lead_cohorts(session, org_id=org_id, window=window, totals=counted, calls=voice)
    now_doing = _now_doing(session, org_id=org_id, now=now, calls=voice)
    items = [
        _messaging(
            session,
            org_id=org_id,
            settings=settings,
            window=window,
            totals=counted,
            touched=cohorts[_TOUCHED],
            now_doing=now_doing,
            now=now,
        )
    ]
    if voice:
        items.append(
            _voice(
                session,
                org_id=org_id,
                settings=settings,
                totals=counted,
                called=cohorts[_CALLED],
                now_doing=now_doing,
                now=now,
            )
        )
    return AgentList(items=items)


class _Window:
    """``[start, end)`` as conditions on a column, and the dialect's timestamp arithmetic."""

    def __init__(self, *, start: datetime | None, end: datetime | None, postgres: bool) -> None:
        self.start = start
        self.end = end
        self.postgres = postgres

    def of(self, column: Any) -> ColumnElement[bool]:
        """``column`` falls in the window."""
        conditions = []
        if self.start is not None:
            conditions.append(column >= self.start)
        if self.end is not None:
            conditions.append(column < self.end)
        return and_(true(), *conditions)

    def since(self, column: Any) -> ColumnElement[bool]:
        """``column`` is at or after the window's start."""
        return true() if self.start is None else column >= self.start

    def duration(self, later: Any, earlier: Any) -> ColumnElement[Any]:
        """``later - earlier``, exactly, on either database: an interval on PostgreSQL (read
        as a ``timedelta``), whole microseconds on SQLite.

        SQLite stores timestamps as ``YYYY-MM-DD HH:MM:SS.ffffff`` text and its ``julianday``
        keeps only milliseconds (in a float): whole seconds come from ``strftime('%s')`` and
        the microseconds from the text, so both databases order the same samples the same
        way and pick the same percentiles.
        """
        if self.postgres:
            return later - earlier  # type: ignore[no-any-return]
        return _sqlite_micros(later) - _sqlite_micros(earlier)


def _sqlite_micros(moment: Any) -> ColumnElement[int]:
    seconds = cast(func.strftime("%s", moment), Integer)
    fraction = cast(func.substr(moment, 21, 6), Integer)
    return seconds * 1_000_000 + fraction


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


@dataclass(frozen=True)
class _Cohort:
    """Nearest-rank p50/p90 of a cohort's samples, its size, and its flags' totals."""

    quantiles: Quantiles
    size: int
    totals: dict[str, int]


def _cohorts(
    session: Session, rows: Subquery, *, postgres: bool, samples: dict[str, tuple[str, ...]]
) -> dict[str, _Cohort]:
    """For each sample column of ``rows`` (a ``_Window.duration``; NULL: the row is not in
    that cohort): p50 and p90 in seconds to the millisecond, how many rows have a sample, and the
    sum of each of its 0/1 flag columns over them. One statement.

    Percentiles are by nearest rank: the smallest sample with at least that share of the
    samples at or below it. PostgreSQL's ``percentile_disc`` is that definition (it skips
    NULLs); on SQLite each sample is ranked among the non-NULL ones with window functions
    (``rn / n >= p``, in integers), which picks the same sample.
    """
    source = rows
    if not postgres:
        source = sa_select(
            rows,
            *(
                column
                for name in samples
                for column in (
                    func.row_number()
                    .over(partition_by=rows.c[name].is_(None), order_by=rows.c[name])
                    .label(f"{name}_rn"),
                    func.count(rows.c[name]).over().label(f"{name}_n"),
                )
            ),
        ).subquery()
    columns: list[ColumnElement[Any]] = []
    for name, flags in samples.items():
        sample = source.c[name]
        for share in (50, 90):
            if postgres:
                columns.append(func.percentile_disc(share / 100).within_group(sample))
            else:
                rank, size = source.c[f"{name}_rn"], source.c[f"{name}_n"]
                reached = and_(sample.is_not(None), rank * 100 >= size * share)
                columns.append(func.min(case((reached, sample))))
        columns.append(func.count(sample))
        columns += [
            func.coalesce(func.sum(case((sample.is_not(None), source.c[flag]), else_=0)), 0)
            for flag in flags
        ]
    values = iter(session.execute(sa_select(*columns).select_from(source)).one())
    found = {}
    for name, flags in samples.items():
        p50, p90, size = next(values), next(values), next(values)
        found[name] = _Cohort(
            quantiles=Quantiles(p50=_seconds(p50), p90=_seconds(p90)),
            size=int(size),
            totals={flag: int(next(values)) for flag in flags},
        )
    return found


_TOUCHED = "touched"
_CALLED = "called"
#: Each cohort: its sample (the wait from a lead's intake to it), the metrics of its size and
#: flags in ``agent_days``, and the index its waits are walked in order on (PostgreSQL).
_COHORTS: dict[str, tuple[Any, str, dict[str, str]]] = {
    _TOUCHED: (
        Lead.first_contact_at,
        agent_days.TOUCHED,
        {"replied": agent_days.TOUCHED_REPLIED, "taken_over": agent_days.TOUCHED_TAKEN_OVER},
    ),
    _CALLED: (Lead.first_call_at, agent_days.CALLED, {"taken_over": agent_days.CALLED_TAKEN_OVER}),
}


#: A window's running totals by metric (``store.agent_days``): counts, and the calls' cost.
_Totals = defaultdict[str, float]


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _totals(session: Session, *, org_id: str, window: _Window) -> _Totals:
    """The window's running totals (``store.agent_days``): its whole UTC days read off
    ``agent_days``, the part of a day at either end (if the window starts or ends inside a
    day) counted off the rows themselves. ``calls:cost`` is the calls' cost, not a count."""
    start, end = window.start, window.end
    first = None if start is None else utc_day(start - timedelta(microseconds=1)) + timedelta(1)
    last = None if end is None else utc_day(end)
    if first is not None and last is not None and first >= last:
        return _counted(session, org_id=org_id, window=window)
    found: _Totals = defaultdict(float)
    for metric, (count, amount) in agent_days.totals(
        session, org_id=org_id, first=first, end=last
    ).items():
        found[metric] += amount if metric == agent_days.CALLS_COST else count
    if first is not None and start is not None and start < _midnight(first):
        edge = _Window(start=start, end=_midnight(first), postgres=window.postgres)
        for metric, value in _counted(session, org_id=org_id, window=edge).items():
            found[metric] += value
    if last is not None and end is not None and _midnight(last) < end:
        edge = _Window(start=_midnight(last), end=end, postgres=window.postgres)
        for metric, value in _counted(session, org_id=org_id, window=edge).items():
            found[metric] += value
    return found


def _counted(session: Session, *, org_id: str, window: _Window) -> _Totals:
    """What ``agent_days`` totals, counted off the window's rows in one statement: AI sends
    by channel (off their partial indexes), calls ended and answered and their cost, and the
    leads' facts (off ``ix_leads_org_created``)."""
    columns: dict[str, Any] = {}
    messages = and_(col(Message.org_id) == org_id, window.of(col(Message.created_at)))
    for channel in MESSAGING_CHANNELS:
        for live in (True, False):
            columns[agent_days.sent_metric(channel, ProviderMode.LIVE if live else None)] = (
                sa_select(func.count())
                .where(messages, col(Message.channel) == channel, _ai_sent(live=live))
                .scalar_subquery()
            )
    calls = sa_select(
        func.count(col(Call.outcome)).label(agent_days.CALLS_ENDED),
        _flag(col(Call.outcome) == CallOutcome.ANSWERED).label(agent_days.CALLS_ANSWERED),
        func.count(col(Call.cost)).label(agent_days.CALLS_COSTED),
        func.coalesce(func.sum(col(Call.cost)), 0).label(agent_days.CALLS_COST),
    ).where(col(Call.org_id) == org_id, window.of(col(Call.created_at)))
    touched, called = col(Lead.first_contact_at).is_not(None), col(Lead.first_call_at).is_not(None)
    taken_over = col(Lead.taken_over_at).is_not(None)
    leads = sa_select(
        _flag(touched).label(agent_days.TOUCHED),
        _flag(and_(touched, col(Lead.replied_at).is_not(None))).label(agent_days.TOUCHED_REPLIED),
        _flag(and_(touched, taken_over)).label(agent_days.TOUCHED_TAKEN_OVER),
        _flag(called).label(agent_days.CALLED),
        _flag(and_(called, taken_over)).label(agent_days.CALLED_TAKEN_OVER),
    ).where(col(Lead.org_id) == org_id, window.of(col(Lead.created_at)))
    call_row, lead_row = calls.subquery(), leads.subquery()
    query = sa_select(
        *(value.label(name) for name, value in columns.items()),
        *call_row.c,
        *lead_row.c,
    ).select_from(call_row.join(lead_row, true()))
    row = session.execute(query).one()._mapping
    found: _Totals = defaultdict(float)
    for name, value in row.items():
        found[name] = float(value) if name == agent_days.CALLS_COST else int(value)
    return found


def _flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _lead_cohorts(
    session: Session, *, org_id: str, window: _Window, totals: _Totals, calls: bool
) -> dict[str, _Cohort]:
    """The leads that came in during the window that the AI touched (a message accepted:
    ``first_contact_at``) and, if ``calls``, called (``first_call_at``): how many, how many
    of them replied or were taken over (from ``totals``), and the p50/p90 of their waits.

    A window's waits are sorted, in one statement over its leads; on PostgreSQL a window of
    more than ``SORT_AT_MOST`` leads that holds at least ``WALK_SHARE`` of the org's has each
    k-th wait read off the cohort's wait index in order instead (``ix_leads_wait``,
    ``ix_leads_call_wait``), as speed to lead does (``reads.pipeline``)."""
    names = [_TOUCHED, _CALLED] if calls else [_TOUCHED]
    sizes = {name: int(totals[_COHORTS[name][1]]) for name in names}
    walked = []
    if window.postgres and any(size > SORT_AT_MOST for size in sizes.values()):
        everything = _Window(start=None, end=None, postgres=True)
        whole = (
            sizes
            if window.start is None and window.end is None
            else {
                name: int(total[_COHORTS[name][1]])
                for total in [_totals(session, org_id=org_id, window=everything)]
                for name in names
            }
        )
        walked = [
            name
            for name in names
            if sizes[name] > SORT_AT_MOST and sizes[name] >= WALK_SHARE * whole[name]
        ]
    quantiles = _walked_waits(session, org_id=org_id, window=window, sizes=sizes, names=walked)
    sorted_names = [name for name in names if name not in walked]
    if sorted_names:
        waits = (
            sa_select(
                *(
                    window.duration(col(_COHORTS[name][0]), col(Lead.created_at)).label(name)
                    for name in sorted_names
                )
            )
            .where(
                col(Lead.org_id) == org_id,
                window.of(col(Lead.created_at)),
                or_(*(col(_COHORTS[name][0]).is_not(None) for name in sorted_names)),
            )
            .subquery()
        )
        found = _cohorts(
            session, waits, postgres=window.postgres, samples={name: () for name in sorted_names}
        )
        quantiles.update({name: cohort.quantiles for name, cohort in found.items()})
    empty = Quantiles(p50=None, p90=None)
    return {
        name: _Cohort(
            quantiles=quantiles.get(name, empty),
            size=sizes.get(name, 0),
            totals={flag: int(totals[metric]) for flag, metric in _COHORTS[name][2].items()},
        )
        for name in (_TOUCHED, _CALLED)
    }


def _walked_waits(
    session: Session, *, org_id: str, window: _Window, sizes: dict[str, int], names: list[str]
) -> dict[str, Quantiles]:
    """Each cohort's p50 and p90 read off its wait index in order (``ORDER BY wait OFFSET
    k - 1 LIMIT 1``, from whichever end is nearer), all in one statement."""
    if not names:
        return {}
    walks = []
    for name in names:
        reached = col(_COHORTS[name][0])
        wait = reached - col(Lead.created_at)
        size = sizes[name]
        for share in (50, 90):
            query = sa_select(wait).where(
                col(Lead.org_id) == org_id, reached.is_not(None), window.of(col(Lead.created_at))
            )
            walks.append(kth_wait(query, wait, size, share))
    values = iter(session.execute(sa_select(*walks)).one())
    return {
        name: Quantiles(p50=_seconds(next(values)), p90=_seconds(next(values))) for name in names
    }


def _seconds(duration: timedelta | int | None) -> float | None:
    """A duration (PostgreSQL's interval, SQLite's microseconds) in seconds to the ms."""
    if duration is None:
        return None
    micros = duration // timedelta(microseconds=1) if isinstance(duration, timedelta) else duration
    return round(max(0, micros) / 1_000_000, 3)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


# -- The messaging agent --------------------------------------------------------------------


@functools.cache  # a clause of constants: built once, reused by every statement
def _ai_sent(*, live: bool) -> ColumnElement[bool]:
    """An AI touch the provider accepted (or the dry run simulated), sent live or not: the
    predicates of ``ix_messages_ai_sent_live`` and ``ix_messages_ai_sent_other``, with the
    values written into the statement (not bound), so the planner matches the index whatever
    plan it keeps."""
    mode = col(Message.mode)
    live_mode = _inline(ProviderMode.LIVE)
    return and_(
        col(Message.sender) == _inline(Sender.AI),
        col(Message.direction) == _inline(Direction.OUTBOUND),
        col(Message.sent_at).is_not(None),
        mode == live_mode if live else or_(mode.is_(None), mode != live_mode),
    )


def _inline(value: str) -> ColumnElement[str]:
    return literal(str(value), literal_execute=True)


def _messaging(
    session: Session,
    *,
    org_id: str,
    settings: OrgSettings,
    window: _Window,
    totals: _Totals,
    touched: _Cohort,
    now_doing: _NowDoing,
    now: datetime,
) -> AgentSummary:
    in_window = and_(col(Message.org_id) == org_id, window.of(col(Message.created_at)))
    sent_live = {
        channel: (
            int(totals[agent_days.sent_metric(channel, ProviderMode.LIVE)]),
            int(totals[agent_days.sent_metric(channel, None)]),
        )
        for channel in MESSAGING_CHANNELS
    }
    prices = settings.unit_prices
    price = {
        Channel.SMS: prices.sms,
        Channel.WHATSAPP: prices.whatsapp,
        Channel.EMAIL: prices.email,
    }
    sent = sum(live + other for live, other in sent_live.values())
    cost = sum(live * price[channel] for channel, (live, _) in sent_live.items() if live)

    # The latest customer messages of the window, each with the AI's next touch on its thread.
    latest = (
        sa_select(col(Message.thread_id), col(Message.created_at))
        .where(in_window, _from_customer(), col(Message.thread_id).is_not(None))
        .order_by(col(Message.created_at).desc(), col(Message.id).desc())
        .limit(REPLY_SAMPLE)
        .subquery()
    )
    later = aliased(Message, name="answer")
    answered_at = (
        sa_select(col(later.sent_at))
        .where(
            col(later.thread_id) == latest.c.thread_id,
            col(later.created_at) > latest.c.created_at,
            col(later.sender) == Sender.AI,
            col(later.direction) == Direction.OUTBOUND,
            col(later.channel).in_(MESSAGING_CHANNELS),
            col(later.sent_at).is_not(None),
        )
        .order_by(col(later.created_at), col(later.id))
        .limit(1)
        .scalar_subquery()
    )
    pairs = sa_select(
        latest.c.created_at.label("created_at"), answered_at.label("answered_at")
    ).subquery()
    replies = (
        sa_select(window.duration(pairs.c.answered_at, pairs.c.created_at).label("us"))
        .where(pairs.c.answered_at.is_not(None))
        .subquery()
    )
    reply_time = _cohorts(session, replies, postgres=window.postgres, samples={"us": ()})["us"]

    active, waiting = now_doing.conversations, now_doing.waiting
    error, failing = _message_error(session, org_id=org_id, now=now)
    satisfaction, sample = _satisfaction(session, in_window=in_window)
    parts = [_count(active, "conversation", "handling {n} {noun}")]
    if waiting:
        parts.append(f"{waiting} waiting for a person")
    return AgentSummary(
        agent=MESSAGING_AGENT,
        kind=AgentKind.MESSAGING,
        assistant_id=None,
        status=_status(failing, active=bool(active)),
        context=_context(parts, error if failing else None),
        active_conversations=active,
        success_rate=_rate(touched.totals["replied"], touched.size),
        response_time_s=touched.quantiles,
        reply_time_s=reply_time.quantiles,
        interactions=sent,
        cost_per_interaction=round(cost / sent, 6) if sent else None,
        currency=prices.currency,
        satisfaction=satisfaction,
        satisfaction_sample=sample,
        takeover_rate=_rate(touched.totals["taken_over"], touched.size),
        last_error=error,
    )


@functools.cache  # a clause of constants: built once, reused by every statement
def _from_customer() -> ColumnElement[bool]:
    return and_(col(Message.sender) == Sender.CUSTOMER, col(Message.direction) == Direction.INBOUND)


@functools.cache  # a clause of constants: built once, reused by every statement
def _activity() -> ColumnElement[datetime]:
    """When a thread last moved: ``tables.THREAD_ACTIVITY``, the expression
    ``ix_threads_org_activity`` indexes."""
    return type_coerce(
        func.coalesce(col(Thread.last_message_at), col(Thread.created_at)), UtcDateTime()
    )


@dataclass(frozen=True)
class _NowDoing:
    """What the agents are doing now, whatever the window."""

    #: Threads the AI handles that moved within ``ACTIVE_WITHIN``.
    conversations: int
    #: Unresolved attention items but unanswered call loops (the messaging agent's).
    waiting: int
    #: Unresolved unanswered call loops (the voice agent's).
    waiting_calls: int
    #: Calls placed within ``CALL_UNDER_WAY_WITHIN`` whose report is not in yet.
    calls_under_way: int


def _now_doing(session: Session, *, org_id: str, now: datetime, calls: bool) -> _NowDoing:
    """The counts of what the agents are doing now, in one statement: the conversations under
    way (read off ``ix_threads_org_activity``, whose expression this repeats), the open
    attention items of each agent and, with ``calls``, the calls under way (read off
    ``ix_calls_org_outcome``: no outcome yet)."""
    conversations = sa_select(func.count()).where(
        col(Thread.org_id) == org_id,
        _activity() >= now - ACTIVE_WITHIN,
        col(Thread.handled_by) == HandledBy.AI,
        col(Thread.status) != ThreadStatus.RESOLVED,
    )
    exhausted = col(Escalation.reason) == EscalationReason.CALL_ATTEMPTS_EXHAUSTED
    waiting = (
        sa_select(
            func.coalesce(func.sum(case((exhausted, 0), else_=1)), 0).label("messaging"),
            func.coalesce(func.sum(case((exhausted, 1), else_=0)), 0).label("calls"),
        )
        .where(col(Escalation.org_id) == org_id, col(Escalation.status).in_(OPEN_STATUSES))
        .subquery()
    )
    under_way = sa_select(func.count()).where(
        col(Call.org_id) == org_id,
        col(Call.outcome).is_(None),
        col(Call.status) == CallStatus.QUEUED,
        col(Call.created_at) >= now - CALL_UNDER_WAY_WITHIN,
        true() if calls else false(),
    )
    found = session.execute(
        sa_select(
            conversations.scalar_subquery(),
            waiting.c.messaging,
            waiting.c.calls,
            under_way.scalar_subquery(),
        )
    ).one()
    return _NowDoing(*(int(value) for value in found))


def _trouble(error: Any) -> ColumnElement[bool]:
    return or_(*(error.startswith(f"{kind.value}:") for kind in PROVIDER_TROUBLE))


def _message_error(
    session: Session, *, org_id: str, now: datetime
) -> tuple[AgentError | None, bool]:
    """The latest AI send that failed for a provider reason (among those written within
    ``ERROR_LOOKBACK``), and whether it puts the agent in error: it failed within
    ``ERROR_WITHIN`` and no AI send was accepted after it."""
    recent = and_(
        col(Message.org_id) == org_id,
        col(Message.created_at) >= now - ERROR_LOOKBACK,
        col(Message.sender) == Sender.AI,
        col(Message.direction) == Direction.OUTBOUND,
    )
    row = session.execute(
        sa_select(col(Message.channel), col(Message.error), col(Message.status_at))
        .where(
            recent,
            col(Message.status) == MessageStatus.FAILED,
            col(Message.status_at).is_not(None),
            _trouble(col(Message.error)),
        )
        .order_by(col(Message.status_at).desc())
        .limit(1)
    ).first()
    if row is None:
        return None, False
    channel, detail, at = row
    error = _agent_error(PROVIDER_OF[channel], detail, at)
    if at < now - ERROR_WITHIN:
        return error, False
    # Newest first: after a recovery the first row read answers.
    since = session.execute(
        sa_select(col(Message.id))
        .where(recent, col(Message.sent_at) > at)
        .order_by(col(Message.created_at).desc())
        .limit(1)
    ).first()
    return error, since is None


def _agent_error(provider: WebhookProvider, detail: str, at: datetime) -> AgentError:
    kind = ProviderHealth(detail.split(":", 1)[0])
    return AgentError(at=at, provider=provider.value, kind=kind, detail=detail)


def _satisfaction(session: Session, *, in_window: ColumnElement[bool]) -> tuple[float | None, int]:
    """The mean sentiment of the window's latest ``SATISFACTION_SAMPLE`` customer messages,
    VADER's compound score (-1 to 1) mapped to 0-1, and how many it is over.

    The score stored with each message is read; the text only of a message without one."""
    stored = col(Message.sentiment)
    rows = session.execute(
        sa_select(
            col(Message.id),
            stored,
            case((stored.is_(None), func.substr(col(Message.body), 1, SENTIMENT_CHARS))),
        )
        .where(in_window, _from_customer())
        .order_by(col(Message.created_at).desc(), col(Message.id).desc())
        .limit(SATISFACTION_SAMPLE)
    ).all()
    scores = [
        _mood(message_id, body) if score is None else (score + 1) / 2
        for message_id, score, body in rows
    ]
    if not scores:
        return None, 0
    return round(sum(scores) / len(scores), 4), len(scores)


@functools.lru_cache(maxsize=4 * SATISFACTION_SAMPLE)
def _mood(message_id: str, body: str) -> float:
    """The sentiment of a message stored without one, on the 0-1 scale, remembered by message
    id: VADER takes about 0.3 ms for a long message, and a dashboard asks for the same latest
    replies again and again (a message's text never changes)."""
    return (sentiment(body) + 1) / 2


# -- The voice agent ------------------------------------------------------------------------


def _voice(
    session: Session,
    *,
    org_id: str,
    settings: OrgSettings,
    totals: _Totals,
    called: _Cohort,
    now_doing: _NowDoing,
    now: datetime,
) -> AgentSummary:
    ended = int(totals[agent_days.CALLS_ENDED])
    answered = int(totals[agent_days.CALLS_ANSWERED])
    cost = totals[agent_days.CALLS_COST]
    has_cost = totals[agent_days.CALLS_COSTED] > 0

    under_way = now_doing.calls_under_way
    retrying, next_at = _calls_in_retry(session, org_id=org_id, settings=settings, now=now)
    waiting = now_doing.waiting_calls
    error, failing = _call_error(session, org_id=org_id, now=now)
    parts = []
    if under_way:
        parts.append(_count(under_way, "call", "{n} {noun} under way"))
    if retrying:
        due = "due now" if next_at is None or next_at <= now else f"in {_in_words(next_at - now)}"
        parts.append(f"{_count(retrying, 'call', '{n} {noun} in retry')}, next {due}")
    if waiting:
        parts.append(f"{waiting} waiting for a person")
    if not parts:
        parts.append("no calls under way or due")
    return AgentSummary(
        agent=VOICE_AGENT,
        kind=AgentKind.VOICE,
        assistant_id=settings.vapi_assistant_id,
        status=_status(failing, active=bool(under_way or retrying)),
        context=_context(parts, error if failing else None),
        active_conversations=under_way,
        success_rate=_rate(answered, ended),
        response_time_s=called.quantiles,
        reply_time_s=Quantiles(p50=None, p90=None),
        interactions=ended,
        cost_per_interaction=round(float(cost) / ended, 4) if ended and has_cost else None,
        currency=VAPI_CURRENCY,
        satisfaction=None,
        satisfaction_sample=0,
        takeover_rate=_rate(called.totals["taken_over"], called.size),
        last_error=error,
    )


def _calls_in_retry(
    session: Session, *, org_id: str, settings: OrgSettings, now: datetime
) -> tuple[int, datetime | None]:
    """Call loops waiting for their next attempt, and when the soonest is due.

    A loop (a ``CallRetry`` workflow, ``calls.workflow_id``) waits when its latest attempt
    ended unanswered (no answer, busy, voicemail, failed) with attempts left under the org's
    ``call_policy``, its lead is still open, the contact has not written since the call and
    no person holds the thread (a hold pauses the loop). The next attempt is due the policy's
    spacing after that call ended; quiet hours or a better part of the day may move a retry later.
    """
    policy = settings.call_policy
    lookback = max(policy.spacing) + timedelta(days=2)
    # Each recent call with its loop's latest attempt beside it (one pass over the calls).
    recent = (
        sa_select(
            col(Call.attempt).label("attempt"),
            func.max(col(Call.attempt)).over(partition_by=col(Call.workflow_id)).label("latest"),
            col(Call.outcome).label("outcome"),
            func.coalesce(col(Call.ended_at), col(Call.placed_at), col(Call.created_at)).label(
                "ended_at"
            ),
            col(Call.lead_id).label("lead_id"),
        )
        .where(col(Call.org_id) == org_id, col(Call.created_at) >= now - lookback)
        .subquery("recent_calls")
    )
    ended_at = type_coerce(recent.c.ended_at, UtcDateTime())
    rows = session.execute(
        sa_select(
            recent.c.attempt,
            func.count(),
            type_coerce(func.min(recent.c.ended_at), UtcDateTime()),
        )
        .select_from(recent)
        .join(Lead, col(Lead.id) == recent.c.lead_id)
        .join(Thread, col(Thread.contact_id) == col(Lead.contact_id))
        .where(
            recent.c.attempt == recent.c.latest,
            recent.c.outcome.in_(RETRIED_OUTCOMES),
            recent.c.attempt < policy.max_attempts,
            col(Lead.stage).not_in(CLOSED_STAGES),
            col(Thread.held_by).is_(None),
            or_(col(Thread.last_inbound_at).is_(None), col(Thread.last_inbound_at) < ended_at),
        )
        .group_by(recent.c.attempt)
    ).all()
    waiting = 0
    soonest: datetime | None = None
    for attempt, count, earliest_end in rows:
        waiting += int(count)
        due = earliest_end + policy.spacing[min(attempt, len(policy.spacing)) - 1]
        soonest = due if soonest is None else min(soonest, due)
    return waiting, soonest


def _call_error(session: Session, *, org_id: str, now: datetime) -> tuple[AgentError | None, bool]:
    """The latest call that failed for a provider reason before it was placed (no outcome:
    read off ``ix_calls_org_outcome``), and whether it puts the agent in error: tried within
    ``ERROR_WITHIN`` and no call placed after it."""
    tried = func.coalesce(col(Call.attempted_at), col(Call.created_at))
    row = session.execute(
        sa_select(col(Call.error), type_coerce(tried, UtcDateTime()))
        .where(
            col(Call.org_id) == org_id,
            col(Call.outcome).is_(None),
            col(Call.status) == CallStatus.FAILED,
            col(Call.created_at) >= now - ERROR_LOOKBACK,
            _trouble(col(Call.error)),
        )
        .order_by(tried.desc())
        .limit(1)
    ).first()
    if row is None:
        return None, False
    detail, at = row
    error = _agent_error(WebhookProvider.VAPI, detail, at)
    if at < now - ERROR_WITHIN:
        return error, False
    since = session.execute(
        sa_select(col(Call.id))
        .where(
            col(Call.org_id) == org_id,
            col(Call.created_at) >= now - ERROR_LOOKBACK,
            col(Call.placed_at) > at,
        )
        .limit(1)
    ).first()
    return error, since is None


# -- Words ----------------------------------------------------------------------------------


def _status(failing: bool, *, active: bool) -> AgentStatus:
    if failing:
        return AgentStatus.ERROR
    return AgentStatus.ACTIVE if active else AgentStatus.IDLE


_TROUBLE_WORDS = {
    ProviderHealth.CREDENTIALS_REJECTED: "{provider} rejected credentials",
    ProviderHealth.SUSPENDED: "{provider} suspended the account",
    ProviderHealth.DOWN: "{provider} not responding",
}


def _context(parts: list[str], error: AgentError | None) -> str:
    """The parts joined with `` · ``, after ``error (Twilio rejected credentials)``."""
    if error is not None:
        provider = WebhookProvider(error.provider).value.title()
        parts = [f"error ({_TROUBLE_WORDS[error.kind].format(provider=provider)})", *parts]
    return " · ".join(parts)


def _count(n: int, noun: str, form: str) -> str:
    return form.format(n=n, noun=noun if n == 1 else f"{noun}s")


def _in_words(delta: timedelta) -> str:
    """``4 min``, ``2 h 5 min``, ``3 days``: rounded up to the minute."""
    minutes = max(1, math.ceil(delta.total_seconds() / 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{math.ceil(hours / 24)} days"
