"""What the OpenAPI document says beyond the route signatures: every error status an
operation can answer, each in the error envelope (API.md "Errors")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from models.schemas import ErrorBody

_COMPONENTS = "#/components/schemas/"

#: Every error status keepwarm answers, and when.
_WHEN = {
    401: "No valid credentials: send `Authorization: Bearer <key>` (a webhook: the provider's "
    "valid signature).",
    403: "The admin token used on an org's route, or an org's key on an admin route.",
    404: "Nothing of that id in this org (another org's is not found either).",
    409: "The change conflicts with the current state: `error.code` says which.",
    413: "The body is over 256 KiB.",
    422: "Invalid input: `error.details` name each bad field.",
    429: "Too many requests for this org: retry after `Retry-After` seconds.",
    503: "A dependency (Temporal, the database) is unavailable: retry shortly.",
}
_HEADERS: dict[int, dict[str, Any]] = {
    429: {
        "Retry-After": {
            "description": "Seconds until the org may send again.",
            "required": True,
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}
_BEARER_CHALLENGE = {
    "WWW-Authenticate": {
        "description": "`Bearer`: how to authenticate.",
        "required": True,
        "schema": {"type": "string", "const": "Bearer"},
    }
}

ERROR_BODY_REF = f"{_COMPONENTS}{ErrorBody.__name__}"
#: What any route behind an org's API key may answer: bad or missing key, the admin token,
#: the org's rate limit, the database down.
ORG_KEY = (401, 403, 429, 503)
#: What any route behind the admin token may answer.
ADMIN_TOKEN = (401, 403, 503)


def errors(
    *statuses: int, bearer: bool = True, html_route: bool = False
) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status with its meaning and the envelope's schema.

    Args:
        *statuses: The error statuses the route can answer.
        bearer: Its 401 carries the ``WWW-Authenticate: Bearer`` challenge (every route
            behind a key or token; not a webhook's).
        html_route: The route answers HTML, but its errors are still the JSON envelope.
    """
    responses: dict[int | str, dict[str, Any]] = {}
    for status in sorted(set(statuses)):
        response: dict[str, Any] = {"description": _WHEN[status]}
        if html_route:
            # FastAPI files a model under the route's own media type; name JSON outright.
            response["content"] = {"application/json": {"schema": {"$ref": ERROR_BODY_REF}}}
        else:
            response["model"] = ErrorBody
        headers = _BEARER_CHALLENGE if status == 401 and bearer else _HEADERS.get(status)
        if headers:
            response["headers"] = headers
        responses[status] = response
    return responses


def signed_body(
    model: type[BaseModel], *, media_type: str, headers: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """``openapi_extra=`` for a route that reads its own body (to check its signature first):
    the body as ``model`` states it, and the signature headers.

    The app lists ``model`` in ``install_openapi`` so the document defines it.
    """
    return {
        "parameters": list(headers),
        "requestBody": {
            "required": True,
            "content": {media_type: {"schema": {"$ref": f"{_COMPONENTS}{model.__name__}"}}},
        },
    }


def install_openapi(app: FastAPI, bodies: Sequence[type[BaseModel]]) -> None:
    """Define ``bodies`` (``signed_body`` routes' bodies) in the app's OpenAPI document."""
    default = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = default()
            _, definitions = models_json_schema(
                [(model, "validation") for model in bodies],
                ref_template=_COMPONENTS + "{model}",
            )
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas.update(definitions.get("$defs", {}))
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
