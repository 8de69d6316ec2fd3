"""The pages' static files under ``/app/static``, and ``/docs`` served from them.

Every browser file is vendored (``api.ui.vendor``), so no page, ``/docs`` included, loads
anything from a CDN.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.responses import Response
from starlette.routing import Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from api.ui.vendor import SHIPPED

STATIC_DIR = Path(__file__).with_name("static")
STATIC_URL = "/app/static"
#: A vendored file's folder names its version, so its URL changes whenever its bytes may.
_VERSIONED = re.compile(r"vendor/[^/]+-\d+\.\d+\.\d+[^/]*/")
IMMUTABLE = "public, max-age=31536000, immutable"


class CachedStaticFiles(StaticFiles):
    """Static files that browsers keep forever under a versioned path, and revalidate
    otherwise (``app.css`` keeps its URL when it changes)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        """The file at ``path``, with its ``Cache-Control``."""
        response = await super().get_response(path, scope)
        versioned = _VERSIONED.match(Path(path).as_posix())
        response.headers["Cache-Control"] = IMMUTABLE if versioned else "no-cache"
        return response


@cache
def _vendored_paths() -> dict[tuple[str, str], str]:
    manifest = json.loads(SHIPPED.read_text())
    return {
        (package["package"], Path(file["path"]).name): file["path"]
        for package in manifest["packages"]
        for file in package["files"]
    }


def vendor_url(package: str, name: str) -> str:
    """The URL path of a vendored file, by npm package and file name, whatever its version.

    Raises:
        KeyError: ``vendor.json`` lists no such file.
    """
    return f"{STATIC_URL}/vendor/{_vendored_paths()[package, name]}"


def install_static(app: FastAPI) -> None:
    """Mount the static files and replace FastAPI's CDN-based ``/docs`` and ``/redoc``.

    ``/docs`` becomes the same Swagger UI from the vendored ``swagger-ui-dist``; ``/redoc`` is
    removed (redoc is not vendored). Neither is in the OpenAPI document.
    """
    app.mount(STATIC_URL, CachedStaticFiles(directory=STATIC_DIR), name="static")
    cdn_pages = {app.docs_url, app.redoc_url} - {None}
    app.router.routes[:] = [
        route
        for route in app.router.routes
        if not (isinstance(route, Route) and route.path in cdn_pages)
    ]
    app.redoc_url = None
    if app.docs_url is None or app.openapi_url is None:
        return
    openapi_url, oauth2_redirect_url = app.openapi_url, app.swagger_ui_oauth2_redirect_url

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=root + vendor_url("swagger-ui-dist", "swagger-ui-bundle.js"),
            swagger_css_url=root + vendor_url("swagger-ui-dist", "swagger-ui.css"),
            swagger_favicon_url=root + vendor_url("swagger-ui-dist", "favicon-32x32.png"),
            oauth2_redirect_url=root + oauth2_redirect_url if oauth2_redirect_url else None,
            init_oauth=app.swagger_ui_init_oauth,
            # Never ask swagger.io to validate the document (a third party, and a CDN's kin).
            swagger_ui_parameters={"validatorUrl": None, **(app.swagger_ui_parameters or {})},
        )

    app.add_route(app.docs_url, swagger_ui, include_in_schema=False)
