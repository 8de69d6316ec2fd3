"""The error envelope (API.md "Errors") and the handlers that produce it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from models.schemas import ErrorBody, ErrorDetail, ErrorInfo

log = logging.getLogger("keepwarm.api")

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "rate_limited",
    503: "dependency_unavailable",
}


class ApiError(Exception):
    """An error the client can act on, rendered in the envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        details: Sequence[ErrorDetail] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        """``status`` and ``message``; ``code`` defaults from the status."""
        super().__init__(message)
        self.status = status
        self.code = code or _CODES.get(status, "error")
        self.message = message
        self.details = list(details)
        self.headers = headers


def invalid(field: str, message: str) -> ApiError:
    """A 422 naming one bad field."""
    return ApiError(422, f"{field}: {message}", details=[ErrorDetail(field=field, message=message)])


def error_response(
    status: int,
    code: str,
    message: str,
    details: Sequence[ErrorDetail] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The envelope as a response."""
    body = ErrorBody(error=ErrorInfo(code=code, message=message, details=list(details)))
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


def _field(loc: Sequence[Any]) -> str:
    parts = [str(part) for part in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:]
    return ".".join(parts) or "body"


#: Methods a route may serve, in the order ``Allow`` names them.
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves on the request's path."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    ]


def install_error_handlers(app: FastAPI) -> None:
    """Render every error, including FastAPI's own, in the envelope."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, error.code, error.message, error.details, error.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, error: RequestValidationError) -> JSONResponse:
        details = []
        for problem in error.errors():
            if problem.get("type") == "json_invalid":
                details.append(ErrorDetail(field="body", message="is not valid JSON"))
                continue
            message = str(problem.get("msg", "is invalid")).removeprefix("Value error, ")
            details.append(ErrorDetail(field=_field(problem.get("loc", ())), message=message))
        summary = "; ".join(f"{d.field}: {d.message}" for d in details[:5])
        return error_response(422, "invalid_input", f"Invalid input: {summary}", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 400 and "parsing the body" in str(error.detail):
            # FastAPI's 400 for a body it could not decode (bad UTF-8, absurd nesting).
            detail = ErrorDetail(field="body", message="could not be read as JSON")
            return error_response(422, "invalid_input", "Invalid input: body: not JSON", [detail])
        code = _CODES.get(error.status_code, "error")
        headers = dict(error.headers) if error.headers else None
        if error.status_code == 405:
            # Starlette names the methods of the first route on the path; a path can have more.
            headers = (headers or {}) | {"Allow": ", ".join(_allowed_methods(request))}
        return error_response(error.status_code, code, str(error.detail), headers=headers)

    @app.exception_handler(OperationalError)
    async def _database_down(_: Request, error: OperationalError) -> JSONResponse:
        log.warning("database call failed: %s", type(error.orig).__name__)
        return error_response(
            503, "dependency_unavailable", "The database is unavailable; retry shortly."
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "Something went wrong inside keepwarm.")
