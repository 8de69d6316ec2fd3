"""Liveness and readiness (API.md "Health")."""

from __future__ import annotations

import httpx

from models.settings import Settings
from tests.conftest import make_settings, serve

UNREACHABLE_TEMPORAL = "127.0.0.1:1"
UNREACHABLE_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:1/nothing?connect_timeout=1"


async def test_ready_when_database_and_temporal_answer(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz")).status_code == 200
    ready = await api.get("/readyz")

    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "temporal": "ok"}


async def test_not_ready_names_temporal_when_it_is_down(stack_settings: Settings) -> None:
    settings = stack_settings.model_copy(update={"temporal_address": UNREACHABLE_TEMPORAL})
    async with serve(settings) as client:
        live = await client.get("/healthz")
        ready = await client.get("/readyz")

    assert live.status_code == 200
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"] == "ok"
    assert ready.json()["checks"]["temporal"].startswith("unavailable")


async def test_not_ready_names_the_database_when_it_is_down(stack_settings: Settings) -> None:
    settings = make_settings(
        database_url=UNREACHABLE_DATABASE, temporal_address=stack_settings.temporal_address
    )
    async with serve(settings) as client:
        ready = await client.get("/readyz")
        leads = await client.get("/v1/leads", headers={"Authorization": "Bearer kw_whatever"})

    assert ready.status_code == 503
    assert ready.json()["checks"] == {
        "database": ready.json()["checks"]["database"],
        "temporal": "ok",
    }
    assert ready.json()["checks"]["database"].startswith("unavailable")
    assert leads.status_code == 503
    assert leads.json()["error"]["code"] == "dependency_unavailable"


async def test_unknown_routes_get_the_error_envelope(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/nothing-here")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
