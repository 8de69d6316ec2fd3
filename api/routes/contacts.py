"""Contacts: merging two that turned out to be one person."""

from __future__ import annotations

import logging
from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api import actions
from api.deps import DatabaseDep, IdParam, OrgDep, TemporalDep
from api.errors import ApiError, invalid
from api.openapi import ORG_KEY, errors
from models.errors import NotFound, SameContact
from models.reads import contacts as contact_reads
from models.schemas import Text

log = logging.getLogger("keepwarm.contacts")
router = APIRouter(prefix="/v1/contacts", tags=["contacts"], responses=errors(*ORG_KEY))


class MergeRequest(BaseModel):
    """``POST /v1/contacts/{contact_id}/merge``."""

    model_config = {"extra": "forbid"}

    other_id: Text = Field(min_length=1, max_length=64)


class Merged(BaseModel):
    """The kept contact and the open leads' workflows that were told."""

    contact_id: str
    merged_contact_id: str
    workflows_told: list[str]


class ConsentChange(BaseModel):
    """One entry of a contact's consent log."""

    channel: str
    granted: bool
    #: Where it came from: ``intake_form``, ``sms_keyword``, ``unsubscribe_link``, ...
    source: str
    #: What proves it: the intake receipt, the webhook receipt or the event.
    evidence: str
    recorded_at: datetime


class ConsentLog(BaseModel):
    """``GET /v1/contacts/{contact_id}/consent-log``: every change, oldest first."""

    contact_id: str
    items: list[ConsentChange]


@router.get("/{contact_id}/consent-log", responses=errors(404, 422))
async def consent_log(contact_id: IdParam, org: OrgDep, database: DatabaseDep) -> ConsentLog:
    """Every consent change of the contact per channel, with its source and evidence."""
    try:
        rows = await database.read(contact_reads.consent_log, org_id=org.id, contact_id=contact_id)
    except NotFound:
        raise ApiError(404, f"No contact {contact_id!r} in this org.") from None
    return ConsentLog(
        contact_id=contact_id,
        items=[
            ConsentChange(
                channel=row.channel,
                granted=row.granted,
                source=row.source,
                evidence=row.evidence,
                recorded_at=row.recorded_at,
            )
            for row in rows
        ],
    )


@router.post("/{contact_id}/merge", responses=errors(404, 413, 422))
async def merge(
    contact_id: IdParam,
    body: MergeRequest,
    org: OrgDep,
    database: DatabaseDep,
    client: TemporalDep,
) -> Merged:
    """Move the other contact's identities, consent, leads and messages onto this one.

    Never done automatically: identity conflicts are flagged for a person to decide.
    """
    try:
        told = await actions.merge(
            org_id=org.id,
            keep_id=contact_id,
            other_id=body.other_id,
            database=database,
            client=client,
        )
    except SameContact as error:
        raise invalid("other_id", str(error)) from None
    except NotFound as missing:
        raise ApiError(404, f"No contact {str(missing)!r} in this org.") from None
    return Merged(contact_id=contact_id, merged_contact_id=body.other_id, workflows_told=told)
