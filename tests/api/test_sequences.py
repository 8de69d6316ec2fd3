"""Sequences as configuration: defaults, replacement, validation, tenancy."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import create_org

VALID = {
    "applies_to": ["high_value"],
    "steps": [
        {"after": "PT15M", "channel": "sms", "template": "Hi {first_name}, it's {org_name}"},
        {"after": "P1D", "channel": "email", "template": "Still keen, {name}?"},
    ],
    "max_attempts": 2,
}


async def test_a_new_org_has_defaults_and_can_replace_them(api: httpx.AsyncClient) -> None:
    _, headers = await create_org(api)

    before = (await api.get("/v1/sequences", headers=headers)).json()["items"]
    put = await api.put("/v1/sequences/hot", json=VALID, headers=headers)
    after = (await api.get("/v1/sequences", headers=headers)).json()["items"]

    assert {(s["name"], s["default"]) for s in before} == {
        ("cart_recovery", True),
        ("hot", True),
        ("nurture", True),
    }
    assert put.status_code == 200, put.text
    assert put.json()["steps"][0]["after"] == "PT15M"
    assert {(s["name"], s["default"]) for s in after} == {
        ("cart_recovery", True),
        ("hot", False),
        ("nurture", True),
    }


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"steps": [{"after": "PT15M", "channel": "sms", "template": "Hi {nickname}"}]}, "steps"),
        ({"steps": [{"after": "PT0S", "channel": "sms", "template": "Hi"}]}, "steps"),
        ({"steps": [{"after": "PT1H", "channel": "fax", "template": "Hi"}]}, "steps"),
        ({"steps": []}, "steps"),
        ({"applies_to": ["vip"]}, "applies_to"),
        ({"stop_on": ["reply", "reply"]}, "stop_on"),
        ({"max_attempts": 0}, "max_attempts"),
    ],
)
async def test_invalid_sequences_are_refused_and_change_nothing(
    api: httpx.AsyncClient, change: dict[str, object], field: str
) -> None:
    _, headers = await create_org(api)

    response = await api.put("/v1/sequences/vip", json={**VALID, **change}, headers=headers)

    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["field"].startswith(field)
    names = [s["name"] for s in (await api.get("/v1/sequences", headers=headers)).json()["items"]]
    assert "vip" not in names


async def test_a_bad_name_is_refused_and_orgs_do_not_see_each_others(
    api: httpx.AsyncClient,
) -> None:
    _, headers = await create_org(api)
    _, other = await create_org(api, name="Other")

    bad = await api.put("/v1/sequences/Not A Name", json=VALID, headers=headers)
    await api.put("/v1/sequences/mine", json=VALID, headers=headers)
    theirs = (await api.get("/v1/sequences", headers=other)).json()["items"]

    assert bad.status_code == 422
    assert "mine" not in [s["name"] for s in theirs]
