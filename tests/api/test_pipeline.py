"""The pipeline report: what a dashboard shows about an org's leads."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from models.database import session_scope
from models.store.leads import set_stage
from models.values import Stage
from tests.conftest import create_org, eventually


async def test_stage_counts_conversion_speed_to_lead_and_value_by_source(
    api: httpx.AsyncClient, pg_engine: Engine
) -> None:
    org_id, headers = await create_org(api)
    leads = []
    for body in (
        {"email": f"{uuid.uuid4().hex[:8]}@example.com", "source": "referral", "value": 100},
        {"email": f"{uuid.uuid4().hex[:8]}@example.com", "source": "cart", "value": 50.5},
        {"phone": "+447911123999", "source": "referral"},  # no SMS consent: no touch
    ):
        answer = await api.post("/v1/leads", json=body, headers=headers)
        leads.append(answer.json()["lead_id"])

    async def all_recorded() -> dict[str, Any] | None:
        report: dict[str, Any] = (await api.get("/v1/pipeline", headers=headers)).json()
        settled = sum(report["stages"].values()) == 3 and report["stages"]["contacted"] == 2
        return report if settled else None

    await eventually(all_recorded, within=15)
    with session_scope(pg_engine) as session:
        set_stage(session, org_id=org_id, lead_id=leads[0], stage=Stage.CONVERTED, reason="test")

    report = (await api.get("/v1/pipeline", headers=headers)).json()

    assert report["stages"]["converted"] == 1
    assert report["stages"]["contacted"] == 1
    assert report["stages"]["new"] == 1
    assert report["conversion_rate"] == round(1 / 3, 4)
    speed = report["time_to_first_contact"]
    assert 0 <= speed["p50_s"] <= speed["p90_s"] < 15
    assert report["lead_value"] == {"total": 150.5, "average": 75.25}
    first_fields = ("source", "leads", "converted", "value")
    assert [{key: line[key] for key in first_fields} for line in report["by_source"]] == [
        {"source": "referral", "leads": 2, "converted": 1, "value": 100.0},
        {"source": "cart", "leads": 1, "converted": 0, "value": 50.5},
    ]
    assert [(line["revenue"], line["customers"], line["ltv"]) for line in report["by_source"]] == [
        (0, 0, None),
        (0, 0, None),
    ]
    only_cart = (await api.get("/v1/pipeline", params={"source": "cart"}, headers=headers)).json()
    assert sum(only_cart["stages"].values()) == 1
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    later = (await api.get("/v1/pipeline", params={"from": future}, headers=headers)).json()
    assert sum(later["stages"].values()) == 0
    assert later["time_to_first_contact"] == {"p50_s": None, "p90_s": None}


async def test_bad_report_windows_are_refused(api: httpx.AsyncClient) -> None:
    _, headers = await create_org(api)

    naive = await api.get("/v1/pipeline", params={"from": "2026-11-01T00:00:00"}, headers=headers)
    backwards = await api.get(
        "/v1/pipeline",
        params={"from": "2026-11-02T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
        headers=headers,
    )
    garbage = await api.get("/v1/pipeline", params={"to": "yesterday"}, headers=headers)

    assert [r.status_code for r in (naive, backwards, garbage)] == [422, 422, 422]
    assert naive.json()["error"]["details"][0]["field"] == "from"
    assert backwards.json()["error"]["details"][0]["field"] == "to"


@pytest.mark.parametrize("path", ["/v1/pipeline", "/v1/calls/stats"])
@pytest.mark.parametrize("moment", ["0.5", "1700000000", "2026-11-01", "2026-11-01T00:00Z"])
async def test_a_window_end_is_a_date_time_and_nothing_else(
    api: httpx.AsyncClient, path: str, moment: str
) -> None:
    _, headers = await create_org(api)

    answer = await api.get(path, params={"to": moment}, headers=headers)

    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["details"][0]["field"] == "to"
