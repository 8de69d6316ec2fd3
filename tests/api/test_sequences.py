"""Sequences as configuration: defaults, replacement, validation, tenancy."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import create_org, eventually

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
    # What a name may hold, in words (not the bare pattern).
    detail = bad.json()["error"]["details"][0]
    assert detail["field"] == "name"
    assert detail["message"] == (
        "'Not A Name' is not a sequence name: use lower-case letters, digits, - and _ "
        "(up to 60), starting with a letter or digit"
    )
    assert "mine" not in [s["name"] for s in theirs]


AB_STEP = {
    "after": "PT1S",
    "channel": "sms",
    "variants": [
        {"name": "short", "template": "Hi {first_name}, book in?"},
        {"name": "long", "template": "Hi {first_name}, a slot opened up at {org_name}."},
    ],
}


@pytest.mark.parametrize(
    "step",
    [
        {**AB_STEP, "template": "both a template and variants"},
        {**AB_STEP, "variants": AB_STEP["variants"][:1]},
        {**AB_STEP, "weights": [1]},
        {**AB_STEP, "weights": [1, 0]},
        {**AB_STEP, "variants": [{"name": "a", "template": "x"}, {"name": "a", "template": "y"}]},
        {**AB_STEP, "variants": [{"name": "A B", "template": "x"}, {"name": "b", "template": "y"}]},
        {**AB_STEP, "fallback": ["voice"]},
        {**AB_STEP, "fallback": ["sms"]},
        {"after": "PT1H", "channel": "sms", "template": "Hi", "allocation": "thompson"},
        {"after": "PT1H", "channel": "voice", "template": "Hi", "fallback": ["email"]},
    ],
)
async def test_invalid_experiments_are_refused_and_change_nothing(
    api: httpx.AsyncClient, step: dict[str, object]
) -> None:
    _, headers = await create_org(api)

    response = await api.put("/v1/sequences/ab", json={**VALID, "steps": [step]}, headers=headers)

    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["field"].startswith("steps")
    names = [s["name"] for s in (await api.get("/v1/sequences", headers=headers)).json()["items"]]
    assert "ab" not in names


async def test_a_leads_variant_is_on_its_message_and_in_the_results(
    api: httpx.AsyncClient,
) -> None:
    _, headers = await create_org(api)
    _, other = await create_org(api, name="Other")
    sequence = {"applies_to": ["high_value", "engaged", "window_shopper", "browsing"]}
    put = await api.put(
        "/v1/sequences/ab",
        json={**sequence, "steps": [{**AB_STEP, "allocation": "thompson"}], "max_attempts": 1},
        headers=headers,
    )
    assert put.status_code == 200, put.text
    assert put.json()["steps"][0]["variants"][1]["name"] == "long"
    lead = (
        await api.post(
            "/v1/leads",
            json={"name": "Ada Lovelace", "phone": "+447911123499", "consent": {"sms": True}},
            headers=headers,
        )
    ).json()

    async def stepped() -> dict[str, Any] | None:
        items = (
            await api.get("/v1/messages", params={"lead_id": lead["lead_id"]}, headers=headers)
        ).json()["items"]
        return next((m for m in items if m["step"] == 1 and m["status"] != "pending"), None)

    message = await eventually(stepped, within=20)
    results = (await api.get("/v1/sequences/ab/results", headers=headers)).json()
    window = await api.get(
        "/v1/sequences/ab/results",
        params={"from": "2026-12-02T00:00:00Z", "to": "2026-12-01T00:00:00Z"},
        headers=headers,
    )
    theirs = await api.get("/v1/sequences/ab/results", headers=other)

    assert (message["sequence"], message["variant"]) == ("ab", message["variant"])
    assert message["variant"] in ("short", "long")
    assert message["body"].startswith("Hi Ada, ")
    [step] = results["steps"]
    figures = {v["name"]: (v["sent"], v["replied"]) for v in step["variants"]}
    assert figures == {
        "short": (int(message["variant"] == "short"), 0),
        "long": (int(message["variant"] == "long"), 0),
    }
    assert step["experiment"] is True
    assert step["verdict"].startswith("not enough data yet: ")
    assert results["min_sample"] == 100
    assert window.status_code == 422
    assert theirs.status_code == 404


async def test_results_of_a_sequence_with_no_sends_and_of_none(api: httpx.AsyncClient) -> None:
    _, headers = await create_org(api)

    hot = await api.get("/v1/sequences/hot/results", headers=headers)
    missing = await api.get("/v1/sequences/no-such/results", headers=headers)

    assert hot.status_code == 200
    assert [(s["step"], s["experiment"], s["verdict"]) for s in hot.json()["steps"]] == [
        (n, False, "no experiment: one version only") for n in (1, 2, 3)
    ]
    assert [v["sent"] for s in hot.json()["steps"] for v in s["variants"]] == [0, 0, 0]
    assert missing.status_code == 404
