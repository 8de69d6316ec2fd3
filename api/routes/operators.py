"""Operators: the people who answer threads, and their presence (a heartbeat from the inbox)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from api.deps import DatabaseDep, IdParam, OrgDep
from api.errors import ApiError
from api.openapi import ORG_KEY, errors
from models.errors import OperatorMissing
from models.reads.operators import operator_list, operator_public
from models.schemas import OperatorCreate, OperatorList, OperatorPublic
from models.services import operators as operator_service
from models.tables import utcnow

router = APIRouter(prefix="/v1/operators", tags=["operators"], responses=errors(*ORG_KEY))


@router.post("", status_code=status.HTTP_201_CREATED, responses=errors(413, 422))
async def create_operator(
    body: OperatorCreate, org: OrgDep, database: DatabaseDep
) -> OperatorPublic:
    """Add an operator (or the owner). Offline until their inbox sends a heartbeat."""
    operator = await database.run(
        operator_service.create_operator,
        org_id=org.id,
        name=body.name,
        role=body.role,
        phone=body.phone,
        email=body.email,
    )
    return operator_public(operator, now=utcnow())


@router.get("")
async def list_operators(org: OrgDep, database: DatabaseDep) -> OperatorList:
    """The org's operators (the owner last), each with whether they are online now."""
    return await database.run(operator_list, org_id=org.id, now=utcnow())


@router.post(
    "/{operator_id}/heartbeat",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(404, 422),
)
async def heartbeat(operator_id: IdParam, org: OrgDep, database: DatabaseDep) -> Response:
    """The operator's inbox is open: online for the next 2 minutes."""
    try:
        await database.run(operator_service.heartbeat, org_id=org.id, operator_id=operator_id)
    except OperatorMissing:
        raise ApiError(404, f"No operator {operator_id!r} in this org.") from None
    return Response(status_code=status.HTTP_204_NO_CONTENT)
