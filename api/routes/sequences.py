"""Nudge sequences as configuration: ``PUT /v1/sequences/{name}``, ``GET /v1/sequences``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import DatabaseDep, OrgDep, WindowDep
from api.errors import ApiError
from api.openapi import ORG_KEY, errors
from models.errors import NotFound
from models.reads import experiments as experiment_reads
from models.reads import sequences as sequence_reads
from models.schemas import SequenceIn, SequenceList, SequenceName, SequencePublic
from models.schemas.experiments import SequenceResults
from models.services import sequences as sequence_service

router = APIRouter(prefix="/v1/sequences", tags=["sequences"], responses=errors(*ORG_KEY))

Name = Annotated[SequenceName, Path()]


@router.get("")
async def list_sequences(org: OrgDep, database: DatabaseDep) -> SequenceList:
    """The org's sequences, with the built-in defaults it has not replaced."""
    items = await database.read(sequence_reads.list_sequences, org_id=org.id)
    return SequenceList(items=items)


@router.put("/{name}", responses=errors(413, 422))
async def put_sequence(
    name: Name, body: SequenceIn, org: OrgDep, database: DatabaseDep
) -> SequencePublic:
    """Create or replace a sequence. Leads in flight take the new version from their next step;
    steps they already took are never sent again. Invalid steps or placeholders: 422."""
    return await database.run(sequence_service.put_sequence, org_id=org.id, name=name, body=body)


@router.get("/{name}/results", response_model=SequenceResults, responses=errors(404, 422))
async def sequence_results(
    name: Name, org: OrgDep, database: DatabaseDep, window: WindowDep
) -> SequenceResults:
    """Each step's variants and what their sends in ``[from, to)`` led to: sent, replied,
    booked, converted, the rates, and the probability each variant's reply rate is the
    step's best (Beta-Binomial). Each step has a plain verdict, which names no winner before
    every variant has ``min_sample`` sends. 404 for a sequence the org does not have."""
    try:
        return await database.read(
            experiment_reads.sequence_results,
            org_id=org.id,
            name=name,
            start=window.start,
            end=window.end,
        )
    except NotFound:
        raise ApiError(404, f"No sequence {name!r} in this org.") from None
