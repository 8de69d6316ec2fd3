"""Operators through HTTP: created per org, online for 2 minutes after each heartbeat."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from models.rules.operators import ONLINE_FOR
from models.store.operators import online_operators
from models.tables import Operator
from tests.conftest import create_org

Headers = dict[str, str]


async def add(api: httpx.AsyncClient, headers: Headers, **body: Any) -> dict[str, Any]:
    response = await api.post("/v1/operators", json=body, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def listed(api: httpx.AsyncClient, headers: Headers) -> dict[str, dict[str, Any]]:
    response = await api.get("/v1/operators", headers=headers)
    assert response.status_code == 200, response.text
    return {item["id"]: item for item in response.json()["items"]}


def last_seen(engine: Engine, operator_id: str, ago: timedelta) -> None:
    with Session(engine) as session:
        operator = session.get(Operator, operator_id)
        assert operator is not None
        operator.last_seen_at = datetime.now(UTC) - ago
        session.add(operator)
        session.commit()


async def test_an_operator_is_online_for_two_minutes_after_a_heartbeat(
    api: httpx.AsyncClient, pg_engine: Engine
) -> None:
    _, headers = await create_org(api)
    owner = await add(api, headers, name="Sam Owner", phone="+447911123456", role="owner")
    ann = await add(api, headers, name="Ann", email="Ann@Example.com", role="operator")

    assert owner == {
        "id": owner["id"],
        "name": "Sam Owner",
        "phone": "+447911123456",
        "email": None,
        "role": "owner",
        "online": False,
        "last_seen_at": None,
        "invite_url": None,  # no email: they get escalations but don't sign in
    }
    assert (ann["email"], ann["phone"], ann["online"]) == ("ann@example.com", None, False)
    assert ann["invite_url"].startswith("http://127.0.0.1:8000/app/invite/")

    beat = await api.post(f"/v1/operators/{ann['id']}/heartbeat", headers=headers)

    assert (beat.status_code, beat.content) == (204, b"")
    now = await listed(api, headers)
    assert list(now) == [ann["id"], owner["id"]]  # the owner, the last rung, comes last
    assert (now[ann["id"]]["online"], now[owner["id"]]["online"]) == (True, False)
    assert now[ann["id"]]["last_seen_at"] is not None

    last_seen(pg_engine, ann["id"], timedelta(seconds=115))
    assert (await listed(api, headers))[ann["id"]]["online"] is True
    last_seen(pg_engine, ann["id"], timedelta(seconds=121))
    assert (await listed(api, headers))[ann["id"]]["online"] is False


async def test_online_is_the_one_rule_the_escalation_ladder_asks(
    api: httpx.AsyncClient, pg_engine: Engine
) -> None:
    org_id, headers = await create_org(api)
    _, other_headers = await create_org(api)
    owner = await add(api, headers, name="Owner", phone="+447911123457", role="owner")
    first = await add(api, headers, name="First", role="operator")
    gone = await add(api, headers, name="Gone", role="operator")
    later = await add(api, headers, name="Later", role="operator")
    elsewhere = await add(api, other_headers, name="Elsewhere", role="operator")
    for operator in (owner, first, later, elsewhere):
        beat = await api.post(
            f"/v1/operators/{operator['id']}/heartbeat",
            headers=other_headers if operator is elsewhere else headers,
        )
        assert beat.status_code == 204
    last_seen(pg_engine, gone["id"], timedelta(minutes=5))
    now = datetime.now(UTC)

    with Session(pg_engine) as session:
        online = online_operators(session, org_id=org_id, now=now)
        later_on = online_operators(session, org_id=org_id, now=now + ONLINE_FOR)

    assert [operator.name for operator in online] == ["First", "Later", "Owner"]
    assert later_on == []


async def test_another_orgs_operator_is_not_found(api: httpx.AsyncClient) -> None:
    _, headers = await create_org(api)
    _, other_headers = await create_org(api)
    ann = await add(api, headers, name="Ann", role="operator")

    foreign = await api.post(f"/v1/operators/{ann['id']}/heartbeat", headers=other_headers)
    missing = await api.post("/v1/operators/op_nope/heartbeat", headers=headers)

    assert (foreign.status_code, missing.status_code) == (404, 404)
    assert foreign.json()["error"]["code"] == "not_found"
    assert await listed(api, other_headers) == {}
    assert (await listed(api, headers))[ann["id"]]["online"] is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Ann", "role": "admin"}, "role"),
        ({"name": "Ann"}, "role"),
        ({"name": "Ann", "role": "operator", "phone": "07911 123456"}, "phone"),  # not E.164
        ({"name": "Ann", "role": "operator", "phone": "+4400"}, "phone"),
        ({"name": "Ann", "role": "operator", "email": "ann-at-example"}, "email"),
        ({"name": "   ", "role": "operator"}, "name"),
        ({"role": "operator"}, "name"),
        ({"name": "Ann", "role": "operator", "team": "night"}, "team"),
    ],
)
async def test_bad_operators_get_422(
    api: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    _, headers = await create_org(api)

    response = await api.post("/v1/operators", json=body, headers=headers)

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert [detail["field"] for detail in error["details"]] == [field]
    assert await listed(api, headers) == {}
