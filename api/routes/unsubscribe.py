"""One-click unsubscribe (RFC 8058): ``GET /u/{token}`` shows a page, ``POST`` unsubscribes.

No login and no cookie: the token is signed with the org's secret and names the contact and
the channel. A bad or altered token gets 404 and changes nothing.
"""

from __future__ import annotations

import html
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import HTMLResponse

from api.deps import DatabaseDep, TemporalDep
from api.openapi import errors
from api.temporal import tell_if_reachable
from models.services.unsubscribe import unsubscribe_by_token, unsubscribe_request
from workflows.lead import ConsentChanged, LeadWorkflow

log = logging.getLogger("keepwarm.unsubscribe")
router = APIRouter(tags=["compliance"])

Token = Annotated[str, Path(max_length=300)]

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{title}</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 32rem; margin: 3rem auto">
<h1>{title}</h1><p>{text}</p>{form}</body></html>"""


def _page(title: str, text: str, form: str = "", status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        PAGE.format(title=html.escape(title), text=html.escape(text), form=form),
        status_code=status,
    )


INVALID = ("Link not valid", "This unsubscribe link is not valid. It may have been altered.")


#: The page is HTML, whether the link is good (200) or not (404); other errors are JSON.
_PAGES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The page.", "content": {"text/html": {"schema": {"type": "string"}}}},
    404: {
        "description": "The link is not valid (altered, or its org or contact is gone): a "
        "page that says so. Nothing changes.",
        "content": {"text/html": {"schema": {"type": "string"}}},
    },
}
#: RFC 8058's one-click body; the link unsubscribes whatever the body says (the page's button
#: sends the same).
_ONE_CLICK: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "List-Unsubscribe": {"type": "string", "examples": ["One-Click"]}
                    },
                }
            }
        },
    }
}


@router.get(
    "/u/{token}",
    response_class=HTMLResponse,
    responses=_PAGES | errors(422, 503, html_route=True),
)
async def unsubscribe_page(token: Token, database: DatabaseDep) -> HTMLResponse:
    """A page with one button that unsubscribes."""
    found = await database.run(unsubscribe_request, token=token)
    if found is None:
        return _page(*INVALID, status=404)
    name, request = found
    form = (
        '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Unsubscribe</button></form>'
    )
    return _page("Unsubscribe", f"Stop {request.channel} messages from {name}?", form=form)


@router.post(
    "/u/{token}",
    response_class=HTMLResponse,
    responses=_PAGES | errors(413, 422, 503, html_route=True),
    openapi_extra=_ONE_CLICK,
)
async def unsubscribe(token: Token, database: DatabaseDep, client: TemporalDep) -> HTMLResponse:
    """Unsubscribe at once (a mail client's one-click POST, or the page's button)."""
    done = await database.run(unsubscribe_by_token, token=token)
    if done is None:
        return _page(*INVALID, status=404)
    name, reach, channel = done
    if reach.workflow_id:
        change = ConsentChanged(
            channel=channel, granted=False, opted_out_everywhere=reach.everywhere
        )
        # Recorded already, and every send checks consent: nothing more goes out.
        await tell_if_reachable(client, reach.workflow_id, LeadWorkflow.consent_changed, change)
    return _page("Unsubscribed", f"You will get no more of these messages from {name}.")
