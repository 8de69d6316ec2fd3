"""Escalation vocabulary: priorities and their order, the statuses that keep an item in the
queue, the ladder's levels, and where a routing went. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from models.values import EscalationStatus, Priority

#: Escalation statuses that keep an item in the queue.
OPEN_STATUSES = (EscalationStatus.OPEN, EscalationStatus.ACKNOWLEDGED)


#: Priorities, lowest first (a thread takes the highest of its open escalations).
PRIORITIES: tuple[Priority, ...] = tuple(Priority)


#: Levels an unacknowledged escalation climbs: 0 the first routing (an online operator, else
#: the queue), then the next online operator at each SLA, then the owner by SMS.
MAX_LEVEL = 4


@dataclass(frozen=True, kw_only=True)
class Routing:
    """Where an escalation went at a level: the operator to notify (if any), and when its SLA
    runs out next (``None``: nothing more to climb, or it is closed)."""

    level: int
    status: str
    operator_id: str | None
    sla_due_at: datetime | None
    note: str
