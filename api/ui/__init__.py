"""The operators' pages (UI.md): server-rendered under ``/app``, signed in as themselves."""

from __future__ import annotations

import logging
import re
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from api.errors import error_response
from api.sessions import NotSignedIn
from api.ui import attention, auth, command, contacts, inbox, leads, stream, team
from api.ui.static import install_static


async def _not_signed_in(request: Request, _error: Exception) -> Response:
    """No session: a page goes to sign-in (and back after), htmx is told to go there, a
    stream or any other request gets 401."""
    if request.headers.get("hx-request") == "true":
        return Response(status_code=401, headers={"HX-Redirect": "/app/login"})
    path = request.url.path
    if request.method == "GET" and path.startswith("/app") and path != "/app/events":
        target = path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/app/login?next={quote(target, safe='')}", status_code=303)
    return error_response(401, "not_signed_in", "Sign in at /app/login first.")


class _NoInviteTokens(logging.Filter):
    """Access logs show ``/app/invite/…``: an unused invite link in a log is a way in."""

    _TOKEN = re.compile(r"(/app/invite/)[^/?\s\"]+")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                self._TOKEN.sub(r"\1…", arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


def install_ui(app: FastAPI) -> None:
    """Mount the pages, their static files and the sign-in redirect."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _NoInviteTokens) for f in access.filters):
        access.addFilter(_NoInviteTokens())
    install_static(app)
    app.add_exception_handler(NotSignedIn, _not_signed_in)
    for module in (auth, command, inbox, attention, leads, contacts, team, stream):
        app.include_router(module.router)
