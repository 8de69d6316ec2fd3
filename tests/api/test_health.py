"""Liveness and readiness (API.md "Health")."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
from sqlalchemy.engine import Engine

from models.settings import Settings
from tests.conftest import PRESENCE_NAMESPACE, eventually, make_settings, serve
from workers.client import connect
from workers.registry import dry_run_adapters
from workers.worker import ACTIVITY_THREADS, build_worker

UNREACHABLE_TEMPORAL = "127.0.0.1:1"
UNREACHABLE_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:1/nothing?connect_timeout=1"


async def test_ready_when_database_and_temporal_answer(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz")).status_code == 200
    ready = await api.get("/readyz")

    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "temporal": "ok", "workers": "ok"}


async def test_not_ready_names_temporal_when_it_is_down(stack_settings: Settings) -> None:
    settings = stack_settings.model_copy(update={"temporal_address": UNREACHABLE_TEMPORAL})
    async with serve(settings) as client:
        live = await client.get("/healthz")
        ready = await client.get("/readyz")

    assert live.status_code == 200
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"] == "ok"
    assert ready.json()["checks"]["temporal"].startswith("unavailable")
    assert ready.json()["checks"]["workers"] == "unknown: Temporal is unavailable"


async def test_not_ready_names_the_database_when_it_is_down(stack_settings: Settings) -> None:
    settings = make_settings(
        database_url=UNREACHABLE_DATABASE, temporal_address=stack_settings.temporal_address
    )
    async with serve(settings) as client:
        ready = await client.get("/readyz")
        leads = await client.get("/v1/leads", headers={"Authorization": "Bearer kw_whatever"})

    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks["database"].startswith("unavailable")
    assert checks["temporal"] == "ok"
    assert leads.status_code == 503
    assert leads.json()["error"]["code"] == "dependency_unavailable"


async def test_not_ready_until_a_worker_polls_and_again_once_it_has_stopped(
    stack_settings: Settings, pg_engine: Engine
) -> None:
    """A namespace no worker polls: 503 naming the workers; a worker starts: ready; it stops:
    503 again once no poll has been seen for ``workers_absent_after``."""
    settings = stack_settings.model_copy(
        update={
            "temporal_namespace": PRESENCE_NAMESPACE,
            "workers_absent_after": timedelta(seconds=5),
        }
    )
    client = await connect(settings)

    async def readiness(client: httpx.AsyncClient) -> tuple[int, dict[str, str]]:
        ready = await client.get("/readyz")
        return ready.status_code, ready.json()["checks"]

    async with serve(settings) as http:
        status, checks = await readiness(http)
        assert status == 503
        assert checks == {
            "database": "ok",
            "temporal": "ok",
            "workers": "missing: workflow, activity",
        }
        with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
            worker = build_worker(
                client, engine=pg_engine, adapters=dry_run_adapters(), executor=executor
            )
            async with worker:

                async def ready() -> bool:
                    return (await readiness(http))[0] == 200

                await eventually(ready)
                assert (await readiness(http))[1]["workers"] == "ok"

        async def gone() -> dict[str, str] | None:
            status, checks = await readiness(http)
            return checks if status == 503 else None

        checks = await eventually(gone, within=30, every=0.5)
        assert checks["workers"] == "missing: workflow, activity"
        assert checks["temporal"] == "ok"


async def test_unknown_routes_get_the_error_envelope(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/nothing-here")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
