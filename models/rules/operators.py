"""Operators' roles and presence: online for two minutes after a heartbeat. Pure."""

from __future__ import annotations

from datetime import datetime, timedelta

from models.tables import Operator
from models.values import OperatorRole

Role = OperatorRole


#: How long a heartbeat keeps an operator online (DESIGN.md "Human handoff").
ONLINE_FOR = timedelta(minutes=2)


def is_online(operator: Operator, *, now: datetime) -> bool:
    """Whether ``operator``'s last heartbeat was less than ``ONLINE_FOR`` before ``now``."""
    seen = operator.last_seen_at
    return seen is not None and now - ONLINE_FOR < seen
