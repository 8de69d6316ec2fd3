"""Adding a provider (a cleaner, a technician): one transaction."""

from __future__ import annotations

from sqlmodel import Session

from models.store.providers import add_provider
from models.tables import Provider


def create_provider(
    session: Session, *, org_id: str, name: str, phone: str | None, email: str | None
) -> Provider:
    """A new provider of the org; ``ProviderExists`` if one already has the name."""
    return add_provider(session, org_id=org_id, name=name, phone=phone, email=email)
