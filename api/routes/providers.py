"""Providers: the people who do the visits (API.md "Appointments and the people who do the
work")."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, status

from api.deps import DatabaseDep, IdParam, OrgDep, WindowDep
from api.errors import ApiError, invalid
from api.openapi import ORG_KEY, errors
from api.sessions import ActorDep
from models.errors import NotFound, ProviderExists
from models.reads.providers import provider_list, provider_performance, reach_back
from models.rules.orgs import org_settings
from models.schemas import ProviderCreate, ProviderCreated, ProviderList, ProviderPerformance
from models.services.providers import create_provider as add_provider
from models.tables import utcnow

router = APIRouter(prefix="/v1/providers", tags=["providers"], responses=errors(*ORG_KEY))

#: The window a performance read covers without ``from``: the 30 days before ``to``.
DEFAULT_WINDOW = timedelta(days=30)


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


@router.get("/{provider_id}/performance", responses=errors(404, 422))
async def provider_performance_report(
    provider_id: IdParam, org: OrgDep, database: DatabaseDep, window: WindowDep
) -> ProviderPerformance:
    """The provider's visits that start in ``[from, to)`` (ISO 8601 with a zone; default the
    30 days to now) and were due by now, cancelled ones aside: how many, attended, on time
    (within the org's ``appointments.on_time_grace``), average lateness, ratings and
    complaints, and flags where the window is worse than the provider's usual (their year
    before ``from``, weighed against the org's). docs/api.md ("Providers") defines each.
    Another org's provider, or none: 404."""
    now = utcnow()
    end = window.end or now
    start = window.start or reach_back(end, DEFAULT_WINDOW)
    if end <= start:
        raise invalid("to", "must be after from (without to, it is now)")
    try:
        return await database.read(
            provider_performance,
            org_id=org.id,
            provider_id=provider_id,
            start=start,
            end=end,
            grace=org_settings(org).appointments.on_time_grace,
            now=now,
        )
    except NotFound:
        raise ApiError(404, f"No provider {provider_id!r} in this org.") from None
