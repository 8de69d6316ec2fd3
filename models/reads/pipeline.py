"""The pipeline report (stage counts, speed to lead) and call statistics, for the API."""

from __future__ import annotations

import math
from datetime import datetime

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from models.schemas import (
    CallHour,
    CallStats,
    LeadValue,
    Percentiles,
    PipelineReport,
    SourceLine,
)
from models.tables import (
    Call,
    Lead,
)
from models.values import (
    CallOutcome,
    Stage,
)


def pipeline_report(
    session: Session,
    *,
    org_id: str,
    start: datetime | None,
    end: datetime | None,
    source: str | None,
) -> PipelineReport:
    """Stage counts, conversion rate, speed to lead (p50, p90) and value, overall and by
    source, for the org's leads created in ``[start, end)``."""
    query = sa_select(
        col(Lead.stage),
        col(Lead.source),
        col(Lead.value),
        col(Lead.created_at),
        col(Lead.first_contact_at),
    ).where(col(Lead.org_id) == org_id)
    if start is not None:
        query = query.where(col(Lead.created_at) >= start)
    if end is not None:
        query = query.where(col(Lead.created_at) < end)
    if source is not None:
        query = query.where(col(Lead.source) == source)
    rows = session.execute(query).all()
    stages = {stage.value: 0 for stage in Stage}
    waits: list[float] = []
    values: list[float] = []
    by_source: dict[str | None, SourceLine] = {}
    for stage, lead_source, value, created, first_contact in rows:
        stages[stage] = stages.get(stage, 0) + 1
        if first_contact is not None:
            waits.append(max(0.0, (first_contact - created).total_seconds()))
        if value is not None:
            values.append(value)
        line = by_source.setdefault(
            lead_source, SourceLine(source=lead_source, leads=0, converted=0, value=0.0)
        )
        line.leads += 1
        line.converted += stage == Stage.CONVERTED
        line.value += value or 0.0
    total = len(rows)
    return PipelineReport(
        stages=stages,
        conversion_rate=round(stages[Stage.CONVERTED] / total, 4) if total else 0.0,
        time_to_first_contact=Percentiles(
            p50_s=_percentile(waits, 0.5), p90_s=_percentile(waits, 0.9)
        ),
        lead_value=LeadValue(
            total=sum(values), average=sum(values) / len(values) if values else None
        ),
        by_source=sorted(by_source.values(), key=lambda line: (-line.leads, line.source or "")),
    )


def _percentile(samples: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile of ``samples``, in seconds rounded to milliseconds."""
    if not samples:
        return None
    ordered = sorted(samples)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return round(ordered[rank - 1], 3)


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
