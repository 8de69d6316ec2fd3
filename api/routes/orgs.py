"""Orgs: created with the admin token; each org reads and edits its own settings."""

from __future__ import annotations

from fastapi import APIRouter, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from api.deps import AdminDep, DatabaseDep, OrgCacheDep, OrgDep, SettingsDep
from api.errors import invalid
from api.openapi import ADMIN_TOKEN, ORG_KEY, errors
from models.rules.orgs import org_settings
from models.rules.settings_changes import section_of
from models.schemas import OrgCreate, OrgCreated, OrgPublic, OrgSettings, OrgSettingsPatch
from models.services import orgs as org_service
from models.services.settings import change_settings
from models.tables import Org, utcnow
from models.values import ProviderMode

router = APIRouter(prefix="/v1/orgs", tags=["orgs"])
#: Who the audit list says made a change sent with the org's API key.
API_KEY_ACTOR = "API key"


def _public(org: Org) -> OrgPublic:
    return OrgPublic(id=org.id, name=org.name, **org_settings(org).model_dump())


@router.post("", status_code=status.HTTP_201_CREATED, responses=errors(*ADMIN_TOKEN, 413, 422))
async def create_org(body: OrgCreate, _: AdminDep, database: DatabaseDep) -> OrgCreated:
    """Create an org. Its API key is in this answer only; keepwarm stores its hash."""
    settings = OrgSettings(timezone=body.timezone)
    if body.default_region:
        settings.default_region = body.default_region
    if body.quiet_hours:
        settings.quiet_hours = body.quiet_hours
    org, api_key = await database.run(org_service.create_org, name=body.name, settings=settings)
    return OrgCreated(id=org.id, name=org.name, api_key=api_key)


@router.get("/me", responses=errors(*ORG_KEY))
async def read_my_org(org: OrgDep) -> OrgPublic:
    """The org's settings (no secrets)."""
    return _public(org)


@router.patch("/me", responses=errors(*ORG_KEY, 413, 422))
async def update_my_org(
    body: OrgSettingsPatch,
    org: OrgDep,
    database: DatabaseDep,
    cache: OrgCacheDep,
    settings: SettingsDep,
) -> OrgPublic:
    """Change some settings; the others keep their values. Invalid values: 422, nothing saved.

    ``provider_mode: live`` needs a deployment that runs live (``KEEPWARM_PROVIDER_MODE``).
    A change shows in the owner's audit list (the Changes settings page) as made by "API key".
    """
    if body.provider_mode == ProviderMode.LIVE and settings.provider_mode != ProviderMode.LIVE:
        raise invalid(
            "provider_mode",
            "this deployment runs dry_run: set KEEPWARM_PROVIDER_MODE=live and the providers' "
            "credentials on the API and the workers first",
        )
    changes = body.model_dump(exclude_unset=True)
    try:
        updated = await database.run(
            change_settings,
            org_id=org.id,
            operator_id=None,
            actor=API_KEY_ACTOR,
            section=section_of(changes),
            changes=changes,
            at=utcnow(),
        )
    except ValidationError as error:  # e.g. a required setting set to null
        raise RequestValidationError(error.errors()) from None
    cache.forget(org.id)
    return _public(updated)
