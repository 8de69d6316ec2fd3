"""The pipeline report (stage counts, funnel, speed to lead, value and revenue by source) and
call statistics, for the API. Aggregated in SQL: a read returns a row per source, channel or
outcome, however many leads and calls the org has.

Speed to lead is the nearest-rank percentile of the seconds from a lead's intake to its first
touch: the value at rank ``ceil(p * n)`` of the ``n`` waits in order. PostgreSQL computes it
with ``percentile_disc`` (which is that definition); SQLite, which has no ordered-set
aggregates, numbers the waits with ``row_number()`` and picks the rank, in integer arithmetic,
so both give the same value. Waits are whole microseconds on both.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    case,
    cast,
    func,
    literal,
    null,
    tuple_,
    union_all,
)
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql
from sqlmodel import Session, col

from models.reads.revenue import (
    SourceRevenueLines,
    for_aggregates,
    previous_window,
    rate,
    source_revenue,
)
from models.schemas import (
    CallHour,
    CallStats,
    ChannelSpeed,
    FunnelStep,
    LeadValue,
    Percentiles,
    PipelineFigures,
    PipelinePrevious,
    PipelineReport,
    PreviousWindow,
    SourceLine,
)
from models.store import lead_groups
from models.tables import (
    Call,
    Lead,
)
from models.values import (
    CallOutcome,
    Stage,
)

#: The funnel's steps, and the stages at which a lead has got at least that far. A lead that
#: went quiet (``ghosting``), was lost or opted out counts as far as ``contacted`` if it was
#: touched: keepwarm keeps a lead's stage, not the furthest it reached.
FUNNEL: tuple[tuple[Stage, frozenset[Stage]], ...] = (
    (Stage.NEW, frozenset(Stage)),
    (
        Stage.CONTACTED,
        frozenset({Stage.CONTACTED, Stage.ENGAGED, Stage.QUOTED, Stage.CONVERTED, Stage.GHOSTING}),
    ),
    (Stage.ENGAGED, frozenset({Stage.ENGAGED, Stage.QUOTED, Stage.CONVERTED})),
    (Stage.QUOTED, frozenset({Stage.QUOTED, Stage.CONVERTED})),
    (Stage.CONVERTED, frozenset({Stage.CONVERTED})),
)
#: The speed-to-lead percentiles: (name, percent).
PERCENTILES = (("p50", 50), ("p90", 90))
_MICROS = 1_000_000


def _leads_in(
    query: Any, *, org_id: str, start: datetime | None, end: datetime | None, source: str | None
) -> Any:
    query = query.where(col(Lead.org_id) == org_id)
    if start is not None:
        query = query.where(col(Lead.created_at) >= start)
    if end is not None:
        query = query.where(col(Lead.created_at) < end)
    if source is not None:
        query = query.where(col(Lead.source) == source)
    return query


def _wait_us(dialect: str) -> Any:
    """Microseconds from a lead's intake to its first touch, never below zero."""
    created, touched = col(Lead.created_at), col(Lead.first_contact_at)
    if dialect == "postgresql":
        # date_part gives a double (EXTRACT a numeric, several times slower): exact to the
        # microsecond for any wait under 285 years, rounded back to whole microseconds.
        seconds = func.date_part("epoch", touched - created)
        return func.greatest(cast(seconds * _MICROS, BigInteger), 0)

    # SQLite stores 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC): whole seconds, then the microseconds.
    def whole(moment: Any) -> Any:
        return cast(func.strftime("%s", moment), Integer)

    def micros(moment: Any) -> Any:
        return cast(func.substr(moment, 21, 6), Integer)

    wait = (whole(touched) - whole(created)) * _MICROS + micros(touched) - micros(created)
    return func.max(wait, 0)


#: A percentile row: (group, key, leads, {name: microseconds}).
SpeedRow = tuple[str, str | None, int, dict[str, int | None]]
#: Touched leads per group: ``("all", None)``, ``("source", s)``, ``("channel", c)``.
Touched = dict[tuple[str, str | None], int]
#: On PostgreSQL a window of up to ``SORT_AT_MOST`` touched leads has its waits sorted
#: (``percentile_disc``); a larger one that holds at least ``WALK_SHARE`` of the org's touched
#: leads has each k-th wait read off an index in wait order (``ix_leads_wait*``). A walk reads
#: ``p * n`` entries of the whole org whatever the window (the window filters the walk), a
#: sort reads the window's rows: at 100,000 leads, walking every group took about 35 ms and
#: sorting them about 80 ms; a 30-day window (15,000 touched leads) sorted in about 15 ms
#: (``bench/analytics.py``).
SORT_AT_MOST = 20_000
WALK_SHARE = 0.4


def nearest_rank(count: int, percent: int) -> int:
    """The nearest rank ``ceil(percent / 100 * count)``, in integers (as SQLite computes it)."""
    return (count * percent + 99) // 100


def kth_wait(query: Any, wait: Any, count: int, percent: int) -> Any:
    """``query``'s nearest-rank ``percent`` wait of ``count``, walked off an index in wait
    order (``ORDER BY wait OFFSET k - 1 LIMIT 1``), from whichever end is nearer: rank k of
    n is rank n - k + 1 from the top. A scalar subquery."""
    rank = nearest_rank(count, percent)
    if rank <= count - rank + 1:
        query = query.order_by(wait).offset(rank - 1)
    else:
        query = query.order_by(wait.desc()).offset(count - rank)
    return query.limit(1).scalar_subquery()


def _speed(
    session: Session,
    *,
    org_id: str,
    start: datetime | None,
    end: datetime | None,
    source: str | None,
    touched: Touched,
) -> list[SpeedRow]:
    """Speed-to-lead percentiles over all touched leads (group ``all``), by source and by the
    first touch's channel, for the groups in ``touched`` (their touched leads)."""
    dialect = session.get_bind().dialect.name
    in_window = touched.get(("all", None), 0)
    if dialect == "postgresql" and in_window > SORT_AT_MOST:
        whole = (
            in_window
            if start is None and end is None
            else _touched_in_org(session, org_id=org_id, source=source)
        )
        if in_window >= WALK_SHARE * whole:
            return _walked(
                session, org_id=org_id, start=start, end=end, source=source, touched=touched
            )
    return _sorted(session, org_id=org_id, start=start, end=end, source=source)


def _sorted(
    session: Session,
    *,
    org_id: str,
    start: datetime | None,
    end: datetime | None,
    source: str | None,
) -> list[SpeedRow]:
    """Each group's percentiles from its waits in order: ``percentile_disc`` on PostgreSQL,
    numbered waits (``row_number()``) on SQLite."""
    dialect = session.get_bind().dialect.name
    waits = _leads_in(
        sa_select(
            col(Lead.source).label("source"),
            col(Lead.first_contact_channel).label("channel"),
            _wait_us(dialect).label("wait"),
        ).where(col(Lead.first_contact_at).is_not(None)),
        org_id=org_id,
        start=start,
        end=end,
        source=source,
    ).subquery("waits")
    if dialect == "postgresql":
        rows = _sorted_percentiles(session, waits)
    else:
        rows = [tuple(row) for row in session.execute(_ranked_percentiles(waits))]
    names = [name for name, _ in PERCENTILES]
    return [
        (group, key, int(count), dict(zip(names, values, strict=True)))
        for group, key, count, *values in rows
    ]


def _touched_in_org(session: Session, *, org_id: str, source: str | None) -> int:
    """The org's touched leads at any time (of ``source``, if given): an index-only count."""
    query = sa_select(func.count()).where(
        col(Lead.org_id) == org_id, col(Lead.first_contact_at).is_not(None)
    )
    if source is not None:
        query = query.where(col(Lead.source) == source)
    return int(session.execute(query).scalar_one())


def _walked(
    session: Session,
    *,
    org_id: str,
    start: datetime | None,
    end: datetime | None,
    source: str | None,
    touched: Touched,
) -> list[SpeedRow]:
    """Each group's k-th wait read off the index ordered by wait (``ORDER BY wait OFFSET
    k - 1 LIMIT 1``, an index-only walk; p90 walks down from the top, a tenth of the way),
    every group and percentile in one statement."""
    wait = col(Lead.first_contact_at) - col(Lead.created_at)
    columns = {"source": col(Lead.source), "channel": col(Lead.first_contact_channel)}

    def condition(group: str, key: str | None) -> Any:
        if group == "all":
            return None
        column = columns[group]
        return column.is_(None) if key is None else column == key

    groups = sorted(touched.items(), key=lambda item: (item[0][0], item[0][1] or ""))
    walks = []
    for (group, key), count in groups:
        where = condition(group, key)
        for _, percent in PERCENTILES:
            query = _leads_in(
                sa_select(wait).where(col(Lead.first_contact_at).is_not(None)),
                org_id=org_id,
                start=start,
                end=end,
                source=source,
            )
            if where is not None:
                query = query.where(where)
            walks.append(kth_wait(query, wait, count, percent))
    found = list(session.execute(sa_select(*walks)).one())
    rows = []
    for (group, key), count in groups:
        values = {}
        for name, _ in PERCENTILES:
            gap = found.pop(0)
            # Whole microseconds, never below zero (clamping keeps the order, so the rank).
            values[name] = max(0, gap // timedelta(microseconds=1))
        rows.append((group, key, count, values))
    return rows


def _sorted_percentiles(session: Session, waits: Any) -> list[tuple[Any, ...]]:
    """``percentile_disc`` over each group's waits, sorted: all, by source, by channel."""
    by_source, by_channel = func.grouping(waits.c.source), func.grouping(waits.c.channel)
    # One ordered-set aggregate for both percentiles: one sort of each group's waits.
    fractions = postgresql.array([literal(percent / 100) for _, percent in PERCENTILES])
    query = sa_select(
        case((by_source == 0, "source"), (by_channel == 0, "channel"), else_="all"),
        case((by_source == 0, waits.c.source), else_=waits.c.channel),
        func.count(),
        func.percentile_disc(fractions).within_group(waits.c.wait),
    ).group_by(func.grouping_sets(tuple_(), tuple_(waits.c.source), tuple_(waits.c.channel)))
    return [
        # No wait at all (an empty window): no array.
        (group, key, count, *(values or [None] * len(PERCENTILES)))
        for group, key, count, values in session.execute(query)
    ]


def _ranked_percentiles(waits: Any) -> Any:
    """Nearest-rank percentiles by numbering the waits (``row_number()``) in each group and
    picking rank ``ceil(p * n)`` = ``(p% * n + 99) // 100``: for SQLite."""
    groups = [("all", null(), None), ("source", waits.c.source, waits.c.source)]
    groups.append(("channel", waits.c.channel, waits.c.channel))
    numbered = union_all(
        *(
            sa_select(
                literal(group).label("grp"),
                key.label("key"),
                waits.c.wait,
                func.row_number().over(partition_by=partition, order_by=waits.c.wait).label("rank"),
                func.count().over(partition_by=partition).label("n"),
            )
            for group, key, partition in groups
        )
    ).subquery("numbered")
    return sa_select(
        numbered.c.grp,
        numbered.c.key,
        numbered.c.n,
        *(
            func.max(
                case(
                    (numbered.c.rank == (numbered.c.n * percent + 99) // 100, numbered.c.wait),
                )
            )
            for _, percent in PERCENTILES
        ),
    ).group_by(numbered.c.grp, numbered.c.key, numbered.c.n)


def _seconds(micros: int | None) -> float | None:
    """Microseconds as seconds rounded to milliseconds."""
    return None if micros is None else round(micros / _MICROS, 3)


def lead_figures(
    session: Session,
    *,
    org_id: str,
    start: datetime | None,
    end: datetime | None,
    source: str | None,
) -> PipelineFigures:
    """Stage counts, funnel, conversion rate, speed to lead (p50, p90: overall, by source and
    by channel) and value, for the org's leads created in ``[start, end)`` (revenue: see
    ``with_revenue``).

    The lead figures are one query counting the leads (and summing their value) by source,
    first-touch channel, stage and whether they were touched: a few hundred rows at most,
    however many leads, which the stage counts, funnel and per-source lines add up. The
    percentiles are a second query (``_speed``).

    Over all time the groups' running counts are read (``store.lead_groups``, a row per
    group, kept as leads are written, touched and move stage). A window's leads are counted:
    the groups are (source, channel, stage), touched and untouched leads side by side, so
    that on PostgreSQL the count of a source's leads is one pass along ``ix_leads_org_groups``,
    which holds the leads in that order and has what is counted: a group ends where the next
    begins. Hashing four keys per lead took twice as long (``bench/analytics.py``).
    """
    for_aggregates(session)
    value = col(Lead.value)

    def counted(touches: bool) -> list[Any]:
        which = col(Lead.first_contact_at)
        when = which.is_not(None) if touches else which.is_(None)
        return [
            func.count(case((when, 1))),
            func.coalesce(func.sum(case((when, value))), 0.0),
            func.count(case((when, value))),
        ]

    groups = (col(Lead.source), col(Lead.first_contact_channel), col(Lead.stage))
    if start is None and end is None:
        # All time: the running counts of each group (``store.lead_groups``), not every lead.
        rows = lead_groups.groups(session, org_id=org_id, source=source)
    else:
        rows = session.execute(
            _leads_in(
                sa_select(*groups, *counted(True), *counted(False)).group_by(*groups),
                org_id=org_id,
                start=start,
                end=end,
                source=source,
            )
        )
    stage_counts = {stage.value: 0 for stage in Stage}
    reached = [0] * len(FUNNEL)
    total_value, valued = 0.0, 0
    lines: dict[str | None, SourceLine] = {}
    touched: Touched = {}
    for lead_source, channel, stage, *sides in rows:
        for touches, leads, value_sum, value_count in ((True, *sides[:3]), (False, *sides[3:])):
            if not leads:
                continue
            stage_counts[stage] = stage_counts.get(stage, 0) + leads
            for index, (step, stages) in enumerate(FUNNEL):
                if stage in stages or (touches and step == Stage.CONTACTED):
                    reached[index] += leads
            total_value += float(value_sum)
            valued += value_count
            source_line = lines.setdefault(
                lead_source, SourceLine(source=lead_source, leads=0, converted=0, value=0.0)
            )
            source_line.leads += leads
            source_line.converted += leads if stage == Stage.CONVERTED else 0
            source_line.value += float(value_sum)
            if touches:
                for bucket in (("all", None), ("source", lead_source), ("channel", channel)):
                    touched[bucket] = touched.get(bucket, 0) + leads
    for each in lines.values():
        each.conversion_rate = rate(each.converted, each.leads)
    total = sum(stage_counts.values())
    overall: dict[str, int | None] = {name: None for name, _ in PERCENTILES}
    by_channel = []
    for group, key, count, values in _speed(
        session, org_id=org_id, start=start, end=end, source=source, touched=touched
    ):
        if group == "all":
            overall = values
        elif group == "channel":
            by_channel.append(
                ChannelSpeed(
                    channel=key,
                    leads=count,
                    p50_s=_seconds(values["p50"]),
                    p90_s=_seconds(values["p90"]),
                )
            )
        elif key in lines:
            lines[key].time_to_first_contact_p50_s = _seconds(values["p50"])
            lines[key].time_to_first_contact_p90_s = _seconds(values["p90"])
    return PipelineFigures(
        stages=stage_counts,
        conversion_rate=rate(stage_counts[Stage.CONVERTED], total) or 0.0,
        time_to_first_contact=Percentiles(
            p50_s=_seconds(overall["p50"]), p90_s=_seconds(overall["p90"])
        ),
        lead_value=LeadValue(total=total_value, average=total_value / valued if valued else None),
        by_source=_in_order(lines.values()),
        funnel=_funnel(reached),
        by_channel=sorted(by_channel, key=lambda line: (-line.leads, line.channel or "")),
    )


def _funnel(reached: Sequence[int]) -> list[FunnelStep]:
    """The funnel's steps with the conversion from the step before and from the start."""
    steps = []
    for index, (step, _) in enumerate(FUNNEL):
        steps.append(
            FunnelStep(
                stage=step.value,
                leads=reached[index],
                conversion_from_previous=rate(reached[index], reached[index - 1])
                if index
                else None,
                conversion_from_start=rate(reached[index], reached[0]),
            )
        )
    return steps


def _in_order(lines: Iterable[SourceLine]) -> list[SourceLine]:
    return sorted(lines, key=lambda line: (-line.leads, -line.revenue, line.source or ""))


def with_revenue(figures: PipelineFigures, revenue: SourceRevenueLines) -> PipelineFigures:
    """``figures`` with each source's revenue, customers and LTV (a line for a source that
    brought revenue but no lead in the window too)."""
    lines = {line.source: line.model_copy() for line in figures.by_source}
    for earned in revenue.lines:
        line = lines.setdefault(
            earned.source, SourceLine(source=earned.source, leads=0, converted=0, value=0.0)
        )
        line.revenue, line.customers, line.ltv = earned.revenue, earned.customers, earned.ltv
    return figures.model_copy(
        update={"by_source": _in_order(lines.values()), "currency": revenue.currency}
    )


def pipeline_figures(
    session: Session,
    *,
    org_id: str,
    start: datetime | None,
    end: datetime | None,
    source: str | None,
) -> PipelineFigures:
    """Every figure of the pipeline report for ``[start, end)``, in this transaction."""
    return with_revenue(
        lead_figures(session, org_id=org_id, start=start, end=end, source=source),
        source_revenue(session, org_id=org_id, start=start, end=end, source=source),
    )


def pipeline_report(
    session: Session,
    *,
    org_id: str,
    start: datetime | None,
    end: datetime | None,
    source: str | None,
    compare: bool = False,
) -> PipelineReport:
    """``GET /v1/pipeline`` in one transaction: the figures of ``[start, end)`` and, with
    ``compare``, of the window of the same length just before it. (The route reads the
    same parts concurrently: ``api.routes.pipeline``.)"""
    before = previous_window(start, end) if compare else None
    return assemble(
        pipeline_figures(session, org_id=org_id, start=start, end=end, source=source),
        None
        if before is None
        else pipeline_figures(
            session, org_id=org_id, start=before[0], end=before[1], source=source
        ),
        before,
    )


def assemble(
    figures: PipelineFigures,
    previous: PipelineFigures | None,
    before: tuple[datetime, datetime] | None,
) -> PipelineReport:
    """The report from the window's figures and the previous window's (``before``)."""
    earlier = None
    if previous is not None and before is not None:
        earlier = PipelinePrevious(
            **previous.model_dump(), window=PreviousWindow(start=before[0], end=before[1])
        )
    return PipelineReport(**figures.model_dump(), previous=earlier)


def call_stats(
    session: Session, *, org_id: str, start: datetime | None, end: datetime | None
) -> CallStats:
    """Counts, outcomes, answer rates (overall and by the recipient's local hour), cost and
    duration of the org's calls created in ``[start, end)``.

    One grouped query: at most a row per (outcome, local hour) comes back, however many calls.
    A call has an outcome once its end-of-call report is in; only such calls have a cost and a
    duration, so the rates and averages are over them.
    """
    query = (
        sa_select(
            col(Call.outcome),
            col(Call.local_hour),
            func.count(),
            func.sum(col(Call.cost)),
            func.sum(col(Call.duration_s)),
            func.count(col(Call.duration_s)),
        )
        .where(col(Call.org_id) == org_id)
        .group_by(col(Call.outcome), col(Call.local_hour))
    )
    if start is not None:
        query = query.where(col(Call.created_at) >= start)
    if end is not None:
        query = query.where(col(Call.created_at) < end)
    by_outcome = {outcome.value: 0 for outcome in CallOutcome}
    hours: dict[int, CallHour] = {}
    calls = 0
    cost = duration = 0.0
    timed = 0
    for outcome, hour, count, cost_sum, duration_sum, duration_count in session.execute(query):
        calls += count
        cost += cost_sum or 0.0
        duration += duration_sum or 0.0
        timed += duration_count
        if outcome is None:
            continue  # not ended yet, or never placed
        by_outcome[outcome] = by_outcome.get(outcome, 0) + count
        if hour is not None:
            line = hours.setdefault(hour, CallHour(hour=hour, calls=0, answered=0, answer_rate=0.0))
            line.calls += count
            line.answered += count if outcome == CallOutcome.ANSWERED else 0
    ended = sum(by_outcome.values())
    answered = by_outcome[CallOutcome.ANSWERED]
    for line in hours.values():
        line.answer_rate = round(line.answered / line.calls, 4)
    return CallStats(
        calls=calls,
        ended=ended,
        by_outcome=by_outcome,
        answer_rate=round(answered / ended, 4) if ended else None,
        total_cost=round(cost, 4),
        cost_per_call=round(cost / ended, 4) if ended else None,
        cost_per_answered_call=round(cost / answered, 4) if answered else None,
        average_duration_s=round(duration / timed, 3) if timed else None,
        by_local_hour=sorted(hours.values(), key=lambda line: line.hour),
    )
