"""A sequence's sends by step and variant, and what followed them: the figures experiments
are judged on.

Every figure counts a lead once per step: a send is a step's message that left
(``sent_at``); it drew a reply when the lead's person wrote after it (to this lead, not a
later enquiry; a keyword such as STOP or HELP is not a reply); it led to a booking when one
of the lead's bookings was made after it; the lead converted when it is converted now. The
variants of a step went to leads picked by chance (a hash of the lead), so their figures
compare fairly even though a reply may answer an earlier touch too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, exists, func
from sqlalchemy import select as sa_select
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from models.rules.keywords import HELP_WORDS, OPT_IN_WORDS, OPT_OUT_WORDS
from models.tables import Booking, Lead, Message
from models.values import Direction, Stage

#: Inbound keywords that are not an answer to the message (STOP, HELP, START...).
NOT_REPLIES = OPT_OUT_WORDS | OPT_IN_WORDS | HELP_WORDS


@dataclass(frozen=True, kw_only=True)
class StepFigures:
    """One step's (and variant's) sends and what followed them."""

    step: int
    #: ``None``: the step's plain template (not an experiment, or before one).
    variant: str | None
    #: The experiment's version the sends were claimed under (``None``: no experiment).
    experiment: str | None
    sent: int
    replied: int
    booked: int
    converted: int


def sequence_figures(
    session: Session,
    *,
    org_id: str,
    sequence: str,
    step: int | None = None,
    sent_from: datetime | None = None,
    sent_to: datetime | None = None,
    mode: str | None = None,
    experiment: str | None = None,
    outcomes: bool = True,
) -> list[StepFigures]:
    """The sequence's figures per step, variant and experiment version for sends in
    ``[sent_from, sent_to)``, by step then variant; only ``step``'s, ``mode``'s (``live`` or
    ``dry_run``) and ``experiment``'s when given. Without ``outcomes`` only sends and replies
    are counted (what Thompson sampling needs, cheaper)."""
    reply = aliased(Message)
    replied = exists().where(
        col(reply.lead_id) == col(Message.lead_id),
        col(reply.thread_id) == col(Message.thread_id),
        col(reply.direction) == Direction.INBOUND.value,
        col(reply.created_at) > col(Message.sent_at),
        func.upper(func.trim(reply.body)).not_in(sorted(NOT_REPLIES)),
    )
    conditions: list[ColumnElement[bool]] = [
        col(Message.org_id) == org_id,
        col(Message.sequence) == sequence,
        col(Message.sent_at).is_not(None),
        col(Message.direction) == Direction.OUTBOUND.value,
    ]
    if step is not None:
        conditions.append(col(Message.step) == step)
    if sent_from is not None:
        conditions.append(col(Message.sent_at) >= sent_from)
    if sent_to is not None:
        conditions.append(col(Message.sent_at) < sent_to)
    if mode is not None:
        conditions.append(col(Message.mode) == mode)
    if experiment is not None:
        conditions.append(col(Message.experiment) == experiment)
    counts: list[ColumnElement[int]] = [
        func.count(func.distinct(Message.lead_id)).label("sent"),
        func.count(func.distinct(case((replied, Message.lead_id)))).label("replied"),
    ]
    keys = (col(Message.step), col(Message.variant), col(Message.experiment))
    query = sa_select(*keys, *counts)
    if outcomes:
        booked = exists().where(
            col(Booking.contact_id) == col(Lead.contact_id),
            col(Booking.lead_id) == col(Message.lead_id),
            col(Booking.created_at) >= col(Message.sent_at),
        )
        query = sa_select(
            *keys,
            *counts,
            func.count(func.distinct(case((booked, Message.lead_id)))).label("booked"),
            func.count(
                func.distinct(case((col(Lead.stage) == Stage.CONVERTED.value, Message.lead_id)))
            ).label("converted"),
        ).join(Lead, and_(col(Lead.id) == col(Message.lead_id)))
    rows: Sequence[Any] = session.execute(
        query.where(*conditions).group_by(*keys).order_by(*keys)
    ).all()
    return [
        StepFigures(
            step=int(row[0]),
            variant=row[1],
            experiment=row[2],
            sent=int(row[3]),
            replied=int(row[4]),
            booked=int(row[5]) if outcomes else 0,
            converted=int(row[6]) if outcomes else 0,
        )
        for row in rows
    ]
