"""Failed work, for the owner (``/app/failed``): failed sends with their error class, each
retried through the same once-only path as ``POST /v1/messages/{id}/retry`` (no double send),
and workflow runs that failed, each linked to its history in Temporal's Web UI, where it can
be reset."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from api import actions
from api.deps import DatabaseDep, IdParam, SettingsDep, TemporalConnectionDep
from api.errors import ApiError
from api.sessions import OperatorSessionDep
from api.temporal import failed_workflows
from api.ui.render import page
from models.reads.failed import failed_sends
from models.schemas.retry import FailedWorkflow, SendErrorClass
from models.services.sign_in import Current
from models.values import OperatorRole

router = APIRouter(prefix="/app", include_in_schema=False)

#: Each error class in words, and what the owner can do about it.
ERROR_CLASSES: dict[SendErrorClass, tuple[str, str]] = {
    SendErrorClass.DOWN: (
        "Provider unavailable",
        "The provider was down or too slow. Retrying is safe.",
    ),
    SendErrorClass.CREDENTIALS_REJECTED: (
        "Credentials rejected",
        "The provider refused keepwarm's credentials. Fix them on the deployment, then retry.",
    ),
    SendErrorClass.SUSPENDED: (
        "Account suspended",
        "The provider suspended the account. Sort it out with them, then retry.",
    ),
    SendErrorClass.BUSINESS_REFUSAL: (
        "Refused by the provider",
        "The provider refused this message itself (an unverified sender, a region not "
        "enabled...). Fix the cause, then send it anyway.",
    ),
    SendErrorClass.UNKNOWN: ("Other", "keepwarm stopped it itself, or the cause is unknown."),
}


def _owner(me: Current) -> None:
    if me.operator.role != OperatorRole.OWNER:
        raise ApiError(403, "Only the owner can see and retry failed work.", code="owner_only")


async def _page(
    request: Request,
    me: Current,
    database: DatabaseDep,
    settings: SettingsDep,
    temporal: TemporalConnectionDep,
    *,
    status_code: int = 200,
    retrying: frozenset[str] = frozenset(),
    **extra: Any,
) -> Response:
    # A retry just accepted may not have reopened its message yet: shown as on its way.
    sends = await database.read(failed_sends, org_id=me.org.id)
    workflows: list[FailedWorkflow] | None
    try:
        workflows = await failed_workflows(
            await temporal.client(),
            org_id=me.org.id,
            limit=50,
            ui_url=settings.effective_temporal_ui_url,
        )
    except ApiError:  # Temporal is away: the sends still show
        workflows = None
    return page(
        request,
        "failed.html",
        me=me,
        title="Failed",
        section="failed",
        sends=sends,
        workflows=workflows,
        classes=ERROR_CLASSES,
        business_refusal=SendErrorClass.BUSINESS_REFUSAL,
        retrying=retrying,
        status_code=status_code,
        **extra,
    )


@router.get("/failed")
async def failed_page(
    request: Request,
    me: OperatorSessionDep,
    database: DatabaseDep,
    settings: SettingsDep,
    temporal: TemporalConnectionDep,
) -> Response:
    """Failed sends and failed workflow runs."""
    _owner(me)
    return await _page(request, me, database, settings, temporal)


@router.post("/failed/{message_id}/retry")
async def retry(
    request: Request,
    message_id: IdParam,
    me: OperatorSessionDep,
    database: DatabaseDep,
    settings: SettingsDep,
    temporal: TemporalConnectionDep,
    force: Annotated[bool, Form()] = False,
) -> Response:
    """Send one failed message again, once."""
    _owner(me)
    try:
        accepted = await actions.retry_send(
            org_id=me.org.id,
            message_id=message_id,
            force=force,
            requested_by=me.operator.id,
            database=database,
            temporal=temporal,
        )
    except ApiError as error:
        if error.status != 409:
            raise
        return await _page(
            request, me, database, settings, temporal, status_code=409, error=str(error)
        )
    notice = (
        "That message is being sent again already."
        if accepted.duplicate
        else "Sending it again: it leaves this list, and its delivery shows in the conversation."
    )
    return await _page(
        request, me, database, settings, temporal, notice=notice, retrying=frozenset({message_id})
    )
