"""The org's leads counted by source, first-touch channel, stage and whether they were touched,
with their value (``lead_groups``): the pipeline report over all time reads these few rows
instead of counting every lead (``models.reads.pipeline.lead_figures``).

A group's row moves in the transaction that moves a lead into or out of it: the lead written
(intake), its stage changed (``store.leads.set_stage``, which locks the lead first) and its
first touch (``store.agent_days.lead_touched``, a conditional UPDATE whose RETURNING row is
the lead as it is now). A lead's source and value are set when it is written and never
change. ``rebuild`` counts an org's groups again from its leads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, case, cast, delete, func, insert
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from models.database import add_up
from models.tables import Lead, LeadGroup

#: Stored for "no source" and "no channel" (a key column can't be NULL).
NONE = ""
#: A group's key (the table's unique index).
KEYS = ("org_id", "source", "channel", "stage", "touched")


@dataclass(frozen=True, kw_only=True)
class Group:
    """Where a lead is counted, and what it adds there."""

    org_id: str
    source: str | None
    channel: str | None
    stage: str
    touched: bool
    value: float | None


def group_of(lead: Lead) -> Group:
    """The group a lead (as loaded) is counted in."""
    return Group(
        org_id=lead.org_id,
        source=lead.source,
        channel=lead.first_contact_channel,
        stage=lead.stage,
        touched=lead.first_contact_at is not None,
        value=lead.value,
    )


def moved(session: Session, *, before: Group | None, after: Group | None) -> None:
    """A lead left ``before`` (``None``: it is new) for ``after``: one upsert, rows in key
    order (two transactions moving leads between the same groups wait in the same order)."""
    rows = [
        {
            "org_id": group.org_id,
            "source": group.source or NONE,
            "channel": group.channel or NONE,
            "stage": group.stage,
            "touched": group.touched,
            "leads": sign,
            "value_sum": sign * (group.value or 0.0),
            "valued": sign * (group.value is not None),
        }
        for group, sign in ((before, -1), (after, 1))
        if group is not None
    ]
    if len(rows) == 2 and _key(rows[0]) == _key(rows[1]):
        return
    rows.sort(key=_key)
    add_up(session, LeadGroup, keys=KEYS, sums=("leads", "value_sum", "valued"), rows=rows)


def _key(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[name] for name in KEYS)


def groups(session: Session, *, org_id: str, source: str | None) -> Any:
    """The org's groups (of ``source``, if given) as ``lead_figures`` counts the leads: per
    (source, channel, stage), the touched leads, their value's sum and how many have one,
    then the same of the untouched."""
    source_column = func.nullif(col(LeadGroup.source), NONE)
    channel_column = func.nullif(col(LeadGroup.channel), NONE)

    def side(touched: bool) -> list[Any]:
        which = col(LeadGroup.touched).is_(touched)
        # Sums of BIGINT are NUMERIC on PostgreSQL: cast back to whole numbers.
        return [
            cast(func.sum(case((which, col(LeadGroup.leads)), else_=0)), BigInteger),
            func.sum(case((which, col(LeadGroup.value_sum)), else_=0.0)),
            cast(func.sum(case((which, col(LeadGroup.valued)), else_=0)), BigInteger),
        ]

    query = (
        sa_select(source_column, channel_column, col(LeadGroup.stage), *side(True), *side(False))
        .where(col(LeadGroup.org_id) == org_id, col(LeadGroup.leads) != 0)
        .group_by(col(LeadGroup.source), col(LeadGroup.channel), col(LeadGroup.stage))
    )
    if source is not None:
        query = query.where(col(LeadGroup.source) == source)
    return session.execute(query)


def rebuild(session: Session, *, org_id: str) -> None:
    """Count the org's groups again from its leads."""
    session.execute(delete(LeadGroup).where(col(LeadGroup.org_id) == org_id))
    # The keys named in a subquery and grouped by name: PostgreSQL can't tell two bound
    # copies of ``''`` in SELECT and GROUP BY are the same expression.
    leads = (
        sa_select(
            col(Lead.org_id).label("org_id"),
            func.coalesce(col(Lead.source), NONE).label("source"),
            func.coalesce(col(Lead.first_contact_channel), NONE).label("channel"),
            col(Lead.stage).label("stage"),
            col(Lead.first_contact_at).is_not(None).label("touched"),
            col(Lead.value).label("value"),
        )
        .where(col(Lead.org_id) == org_id)
        .subquery()
    )
    keys = (leads.c.org_id, leads.c.source, leads.c.channel, leads.c.stage, leads.c.touched)
    counted = sa_select(
        *keys,
        func.count(),
        func.coalesce(func.sum(leads.c.value), 0.0),
        func.count(leads.c.value),
    ).group_by(*keys)
    session.execute(
        insert(LeadGroup).from_select(
            ["org_id", "source", "channel", "stage", "touched", "leads", "value_sum", "valued"],
            counted,
        )
    )
