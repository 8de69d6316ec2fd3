"""Static files: a vendored file is cached for good (its URL names its version), anything else
is revalidated; ``/docs`` comes from them, and neither is part of the API's contract."""

from __future__ import annotations

import httpx

from api.ui.static import vendor_url


async def test_a_vendored_file_is_cached_for_good(api: httpx.AsyncClient) -> None:
    answer = await api.get(vendor_url("htmx.org", "htmx.min.js"))

    assert answer.status_code == 200
    assert "/htmx.org-2." in str(answer.url)
    assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"


async def test_an_unversioned_file_is_revalidated(api: httpx.AsyncClient) -> None:
    answer = await api.get("/app/static/vendor/vendor.json")

    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-cache"


async def test_docs_load_swagger_ui_from_the_static_files(api: httpx.AsyncClient) -> None:
    page = (await api.get("/docs")).text

    assert vendor_url("swagger-ui-dist", "swagger-ui-bundle.js") in page
    assert vendor_url("swagger-ui-dist", "swagger-ui.css") in page
    assert "cdn." not in page and "https://" not in page


async def test_redoc_is_gone_and_neither_page_is_in_the_contract(api: httpx.AsyncClient) -> None:
    paths = (await api.get("/openapi.json")).json()["paths"]

    assert (await api.get("/redoc")).status_code == 404
    assert [p for p in paths if p.startswith(("/docs", "/redoc", "/app/static"))] == []
