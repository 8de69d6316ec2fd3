"""The operators' pages (UI.md): server-rendered under ``/app``, signed in as themselves."""

from __future__ import annotations

import inspect
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from api.errors import ApiError, error_response
from api.sessions import NotSignedIn
from api.ui import (
    admin,
    alerts,
    attention,
    auth,
    bookings,
    command,
    contacts,
    inbox,
    leads,
    payments,
    pipeline,
    providers,
    settings,
    settings_sequences,
    stream,
    team,
)
from api.ui.render import page
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


Handler = Callable[[Request, Any], Response | Awaitable[Response]]
_HEADINGS = {
    403: "Not allowed",
    404: "Not found",
    409: "That changed meanwhile",
    422: "That link doesn't work",
}


def _html_for_pages(envelope: Handler) -> Handler:
    """``envelope`` (an error handler answering the JSON error envelope), except that a page
    someone navigated to under ``/app`` gets an HTML page saying the same, same status."""

    async def handler(request: Request, error: Any) -> Response:
        response = envelope(request, error)
        if inspect.isawaitable(response):
            response = await response
        navigating = request.method == "GET" and request.headers.get("hx-request") != "true"
        if not (navigating and request.url.path.startswith("/app")):
            return response
        message = json.loads(bytes(response.body))["error"]["message"]
        heading = _HEADINGS.get(response.status_code, "Something went wrong")
        return page(
            request,
            "error.html",
            me=None,
            title=heading,
            heading=heading,
            message=message,
            status_code=response.status_code,
        )

    return handler


def install_ui(app: FastAPI) -> None:
    """Mount the pages, their static files and the sign-in redirect."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _NoInviteTokens) for f in access.filters):
        access.addFilter(_NoInviteTokens())
    install_static(app)
    app.add_exception_handler(NotSignedIn, _not_signed_in)
    for error in (ApiError, RequestValidationError):
        app.add_exception_handler(error, _html_for_pages(app.exception_handlers[error]))
    for module in (
        auth,
        command,
        inbox,
        attention,
        alerts,
        pipeline,
        leads,
        payments,
        bookings,
        providers,
        contacts,
        team,
        settings,
        settings_sequences,
        admin,
        stream,
    ):
        app.include_router(module.router)
