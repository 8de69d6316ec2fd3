"""Reads about orgs the API and the CLI need: the org behind an API key, how many there are,
and whether the database answers."""

from __future__ import annotations

from sqlalchemy import func, literal
from sqlmodel import Session, select

from models.tables import (
    Org,
)


def org_for_key_hash(session: Session, *, key_hash: str) -> Org | None:
    """The org whose API key hashes to ``key_hash``, if any."""
    return session.exec(select(Org).where(Org.api_key_hash == key_hash)).first()


def count_orgs(session: Session) -> int:
    """How many orgs exist."""
    return session.exec(select(func.count()).select_from(Org)).one()


def ping(session: Session) -> None:
    """Raise if the database can't answer."""
    session.exec(select(literal(1))).one()
