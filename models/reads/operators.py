"""The org's operators as the API lists them: each with whether they are online now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from models.rules.operators import is_online
from models.schemas import OperatorList, OperatorPublic
from models.store.operators import list_operators
from models.tables import Operator


def operator_public(operator: Operator, *, now: datetime) -> OperatorPublic:
    """One operator as the API shows them (no secrets), online or not at ``now``."""
    fields = operator.model_dump(include={"id", "name", "phone", "email", "role", "last_seen_at"})
    return OperatorPublic.model_validate({**fields, "online": is_online(operator, now=now)})


def operator_list(session: Session, *, org_id: str, now: datetime) -> OperatorList:
    """The org's operators (the owner last), each with whether they are online at ``now``."""
    return OperatorList(
        items=[operator_public(row, now=now) for row in list_operators(session, org_id=org_id)]
    )


def operator_names(session: Session, *, org_id: str) -> dict[str, str]:
    """Every operator's name by id, removed ones too (they still wrote messages and held
    threads): how the pages name people."""
    return {
        operator.id: operator.name
        for operator in list_operators(session, org_id=org_id, include_removed=True)
    }


@dataclass(frozen=True)
class TeamMember:
    """An operator as the owner's Team page shows them."""

    operator: OperatorPublic
    #: Chose a password (signs in); ``False``: invited, not yet accepted.
    signed_up: bool


def team(session: Session, *, org_id: str, now: datetime) -> list[TeamMember]:
    """The org's operators (not removed ones), the owner last, for the Team page."""
    return [
        TeamMember(operator=operator_public(row, now=now), signed_up=row.password_hash is not None)
        for row in list_operators(session, org_id=org_id)
    ]


def viewers(
    session: Session, *, org_id: str, thread_id: str, now: datetime, besides: str
) -> list[str]:
    """The names of the org's operators online now whose inbox shows ``thread_id``, other
    than ``besides`` (the one asking)."""
    return [
        operator.name
        for operator in list_operators(session, org_id=org_id)
        if operator.viewing_thread_id == thread_id
        and operator.id != besides
        and is_online(operator, now=now)
    ]
