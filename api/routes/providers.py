"""Providers: the people who do the visits (API.md "Appointments and the people who do the
work")."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.deps import DatabaseDep, OrgDep
from api.errors import ApiError
from api.openapi import ORG_KEY, errors
from api.sessions import ActorDep
from models.errors import ProviderExists
from models.reads.providers import provider_list
from models.schemas import ProviderCreate, ProviderCreated, ProviderList
from models.services.providers import create_provider as add_provider

router = APIRouter(prefix="/v1/providers", tags=["providers"], responses=errors(*ORG_KEY))


@router.post("", status_code=status.HTTP_201_CREATED, responses=errors(409, 413, 422))
async def create_provider(
    body: ProviderCreate, actor: ActorDep, database: DatabaseDep
) -> ProviderCreated:
    """Add a provider: a cleaner or technician who does the org's visits. Another provider
    of the org with the name (spaces aside): 409. With a session, only the owner may."""
    actor.require_owner()
    try:
        provider = await database.run(
            add_provider,
            org_id=actor.org.id,
            name=body.name,
            phone=body.phone,
            email=body.email,
        )
    except ProviderExists as error:
        raise ApiError(409, str(error), code="provider_exists") from None
    return ProviderCreated(id=provider.id)


@router.get("")
async def list_providers(org: OrgDep, database: DatabaseDep) -> ProviderList:
    """The org's providers, by name."""
    return await database.read(provider_list, org_id=org.id)
