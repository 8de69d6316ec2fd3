"""Providers: the people who do the org's visits."""

from __future__ import annotations

from sqlmodel import Session, col, select

from models.database import insert_once
from models.errors import NotFound, ProviderExists
from models.tables import Provider
from models.values import new_id


def add_provider(
    session: Session, *, org_id: str, name: str, phone: str | None, email: str | None
) -> Provider:
    """A new provider of the org; ``ProviderExists`` if one already has the name (two
    requests at once: the unique constraint decides, and the second gets the error)."""
    provider = Provider(id=new_id("prov"), org_id=org_id, name=name, phone=phone, email=email)
    _, added = insert_once(
        session, provider, col(Provider.org_id) == org_id, col(Provider.name) == name
    )
    if not added:
        raise ProviderExists(f"The org already has a provider named {name}.")
    return provider


def providers_of(session: Session, *, org_id: str) -> list[Provider]:
    """The org's providers, by name."""
    return list(
        session.exec(select(Provider).where(Provider.org_id == org_id).order_by(col(Provider.name)))
    )


def get_provider(session: Session, *, org_id: str, provider_id: str) -> Provider:
    """The org's provider; ``NotFound`` if there is none by that id in this org."""
    provider = session.get(Provider, provider_id)
    if provider is None or provider.org_id != org_id:
        raise NotFound(provider_id)
    return provider
