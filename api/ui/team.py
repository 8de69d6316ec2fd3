"""The Team page: who answers threads, and (the owner) inviting and removing them.

An invite link is shown once, on the page that made it; the owner sends it themselves.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from api import actions
from api.deps import DatabaseDep, IdParam, SettingsDep, TemporalConnectionDep
from api.errors import ApiError
from api.sessions import OperatorSessionDep
from api.ui.render import page
from models.errors import OperatorExists, OperatorMissing
from models.reads.operators import team
from models.schemas import check_email
from models.services import operators as operator_service
from models.services.sign_in import Current, reinvite
from models.settings import Settings
from models.tables import utcnow
from models.values import OperatorRole

router = APIRouter(prefix="/app", include_in_schema=False)


def _owner(me: Current) -> None:
    if me.operator.role != OperatorRole.OWNER:
        raise ApiError(403, "Only the owner can change the team.", code="owner_only")


def _link(settings: Settings, token: str) -> str:
    return f"{settings.effective_public_url}/app/invite/{token}"


async def _page(
    request: Request, me: Current, database: DatabaseDep, *, status_code: int = 200, **extra: Any
) -> Response:
    members = await database.read(team, org_id=me.org.id, now=utcnow())
    return page(
        request,
        "team.html",
        me=me,
        title="Team",
        section="team",
        members=members,
        is_owner=me.operator.role == OperatorRole.OWNER,
        status_code=status_code,
        **extra,
    )


@router.get("/team")
async def team_page(request: Request, me: OperatorSessionDep, database: DatabaseDep) -> Response:
    """The team, with the owner's invite form."""
    return await _page(request, me, database)


@router.post("/team/invite")
async def invite(
    request: Request,
    me: OperatorSessionDep,
    database: DatabaseDep,
    settings: SettingsDep,
    name: Annotated[str, Form(max_length=200)],
    email: Annotated[str, Form(max_length=320)],
    role: Annotated[OperatorRole, Form()],
) -> Response:
    """Add someone and show their one-time invite link."""
    _owner(me)
    try:
        address = check_email(email)
        if not name.strip():
            raise ValueError("Give their name.")
        invited = await database.run(
            operator_service.create_operator,
            org_id=me.org.id,
            name=name.strip(),
            role=role,
            email=address,
        )
    except (ValueError, OperatorExists) as error:
        message = f"Email {error}" if str(error).startswith("is ") else str(error)
        return await _page(request, me, database, status_code=422, error=message)
    assert invited.invite_token is not None
    return await _page(
        request,
        me,
        database,
        notice=f"{invited.operator.name} is invited.",
        invite_url=_link(settings, invited.invite_token),
        invited_name=invited.operator.name,
    )


@router.post("/team/{operator_id}/reinvite")
async def new_link(
    request: Request,
    operator_id: IdParam,
    me: OperatorSessionDep,
    database: DatabaseDep,
    settings: SettingsDep,
) -> Response:
    """A fresh invite link (the earlier one stops working)."""
    _owner(me)
    try:
        token = await database.run(
            reinvite, org_id=me.org.id, operator_id=operator_id, now=utcnow()
        )
    except OperatorMissing:
        raise ApiError(404, "No such team member.") from None
    members = await database.read(team, org_id=me.org.id, now=utcnow())
    name = next((m.operator.name for m in members if m.operator.id == operator_id), "them")
    return await _page(
        request,
        me,
        database,
        notice="A new invite link; the earlier one no longer works.",
        invite_url=_link(settings, token),
        invited_name=name,
    )


@router.post("/team/{operator_id}/remove")
async def remove(
    request: Request,
    operator_id: IdParam,
    me: OperatorSessionDep,
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
) -> Response:
    """Remove someone: signed out everywhere, no more sign-in."""
    _owner(me)
    if operator_id == me.operator.id:
        return await _page(
            request, me, database, status_code=409, error="You can't remove yourself."
        )
    try:
        await actions.remove_operator(
            org_id=me.org.id, operator_id=operator_id, database=database, temporal=temporal
        )
    except OperatorMissing:
        raise ApiError(404, "No such team member.") from None
    return await _page(request, me, database, notice="Removed; they are signed out everywhere.")
