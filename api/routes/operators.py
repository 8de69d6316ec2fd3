"""Operators: the people who answer threads, their invites to sign in, and their presence
(a heartbeat from the inbox)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from api import actions
from api.deps import DatabaseDep, IdParam, OrgDep, SettingsDep, TemporalConnectionDep
from api.errors import ApiError
from api.openapi import ORG_KEY, errors
from api.sessions import ActorDep
from models.errors import OperatorExists, OperatorMissing
from models.reads.operators import operator_list, operator_public
from models.schemas import OperatorCreate, OperatorCreated, OperatorList
from models.services import operators as operator_service
from models.tables import utcnow

router = APIRouter(prefix="/v1/operators", tags=["operators"], responses=errors(*ORG_KEY))


@router.post("", status_code=status.HTTP_201_CREATED, responses=errors(409, 413, 422))
async def create_operator(
    body: OperatorCreate, actor: ActorDep, database: DatabaseDep, settings: SettingsDep
) -> OperatorCreated:
    """Add an operator (or the owner) with a one-time invite link to choose a password
    (``invite_url``, shown only here; an operator without an email gets none). Offline until
    their inbox sends a heartbeat. Another operator of the org with the email: 409. With a
    session, only the owner may invite."""
    actor.require_owner()
    try:
        invited = await database.run(
            operator_service.create_operator,
            org_id=actor.org.id,
            name=body.name,
            role=body.role,
            phone=body.phone,
            email=body.email,
        )
    except OperatorExists as error:
        raise ApiError(409, str(error), code="operator_exists") from None
    token = invited.invite_token
    return OperatorCreated(
        **operator_public(invited.operator, now=utcnow()).model_dump(),
        invite_url=f"{settings.effective_public_url}/app/invite/{token}" if token else None,
    )


@router.get("")
async def list_operators(org: OrgDep, database: DatabaseDep) -> OperatorList:
    """The org's operators (the owner last), each with whether they are online now."""
    return await database.read(operator_list, org_id=org.id, now=utcnow())


@router.delete(
    "/{operator_id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(404, 409, 422)
)
async def delete_operator(
    operator_id: IdParam, actor: ActorDep, database: DatabaseDep, temporal: TemporalConnectionDep
) -> Response:
    """Remove an operator: their sessions end at once and they can't sign in; what they did
    stays attributed to them, and the threads they held go back to the AI. With a session,
    only the owner may, and not themselves."""
    actor.require_owner()
    if operator_id == actor.operator_id:
        raise ApiError(409, "You can't remove yourself.", code="cannot_remove_self")
    try:
        await actions.remove_operator(
            org_id=actor.org.id, operator_id=operator_id, database=database, temporal=temporal
        )
    except OperatorMissing:
        raise ApiError(404, f"No operator {operator_id!r} in this org.") from None
    return Response(status_code=status.HTTP_204_NO_CONTENT)


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
