"""The org's providers, as the API lists them."""

from __future__ import annotations

from sqlmodel import Session

from models.schemas import ProviderList, ProviderPublic
from models.store.providers import providers_of


def provider_list(session: Session, *, org_id: str) -> ProviderList:
    """The org's providers, by name."""
    return ProviderList(
        items=[
            ProviderPublic(
                id=provider.id,
                name=provider.name,
                phone=provider.phone,
                email=provider.email,
                created_at=provider.created_at,
            )
            for provider in providers_of(session, org_id=org_id)
        ]
    )
