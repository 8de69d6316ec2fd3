"""Call records: each lead's calls on its view, and the org's call statistics."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy.engine import Engine

from models.database import session_scope
from models.tables import Call
from models.values import CallOutcome, CallStatus
from tests.api.test_identity import lead_when_recorded, post
from tests.conftest import create_org

Headers = dict[str, str]

#: A Monday in the past: the calls below were placed that day.
DAY = datetime(2026, 3, 2, tzinfo=UTC)


def a_call(
    org_id: str,
    *,
    at: datetime,
    lead_id: str | None = None,
    attempt: int = 1,
    ended_reason: str | None = None,
    outcome: CallOutcome | None = None,
    status: CallStatus | None = None,
    local_hour: int | None = 9,
    duration_s: float | None = None,
    cost: float | None = None,
    summary: str | None = None,
) -> Call:
    """A call as the call-retry loop leaves it: ended ones carry Vapi's report."""
    ended = outcome is not None
    key = f"lead-{uuid.uuid4().hex[:12]}/call-retry-1/call-{attempt}"
    return Call(
        id=f"call_{uuid.uuid4().hex}",
        org_id=org_id,
        lead_id=lead_id,
        workflow_id=key.rsplit("/", 1)[0],
        attempt=attempt,
        idempotency_key=key,
        mode="live",
        to_address="+447911123456",
        status=status or (CallStatus.ENDED if ended else CallStatus.QUEUED),
        provider_call_id=f"vapi-{uuid.uuid4().hex[:16]}" if status != CallStatus.FAILED else None,
        ended_reason=ended_reason,
        outcome=outcome,
        summary=summary,
        duration_s=duration_s,
        cost=cost,
        local_hour=local_hour,
        created_at=at,
        touched_at=at,
        placed_at=at + timedelta(seconds=2) if status != CallStatus.FAILED else None,
        ended_at=at + timedelta(seconds=2 + (duration_s or 0)) if ended else None,
    )


def insert(engine: Engine, *calls: Call) -> None:
    with session_scope(engine) as session:
        session.add_all(calls)


async def stats(api: httpx.AsyncClient, headers: Headers, **params: str) -> dict[str, Any]:
    response = await api.get("/v1/calls/stats", params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def known_day(org_id: str) -> list[Call]:
    """Eight calls on ``DAY``: six ended (three answered), one ringing, one never placed."""
    return [
        a_call(
            org_id,
            at=DAY,  # exactly `from`: inside the window
            ended_reason="assistant-ended-call",
            outcome=CallOutcome.ANSWERED,
            local_hour=9,
            duration_s=120.0,
            cost=0.30,
        ),
        a_call(
            org_id,
            at=DAY + timedelta(hours=1),
            ended_reason="customer-ended-call",
            outcome=CallOutcome.ANSWERED,
            local_hour=9,
            duration_s=60.0,
            cost=0.25,
        ),
        a_call(
            org_id,
            at=DAY + timedelta(hours=2),
            ended_reason="customer-did-not-answer",
            outcome=CallOutcome.NO_ANSWER,
            local_hour=9,
            duration_s=28.0,
            cost=0.03,
        ),
        a_call(
            org_id,
            at=DAY + timedelta(hours=5),
            ended_reason="voicemail",
            outcome=CallOutcome.VOICEMAIL,
            local_hour=14,
            duration_s=35.0,
            cost=0.10,
        ),
        a_call(
            org_id,
            at=DAY + timedelta(hours=6),
            ended_reason="customer-ended-call",
            outcome=CallOutcome.ANSWERED,
            local_hour=14,
            duration_s=180.0,
            cost=0.40,
        ),
        # Busy: Vapi reports no duration and no charge.
        a_call(
            org_id,
            at=DAY + timedelta(hours=8),
            ended_reason="customer-busy",
            outcome=CallOutcome.BUSY,
            local_hour=17,
            cost=0.0,
        ),
        # Still ringing: no report yet.
        a_call(org_id, at=DAY + timedelta(hours=8, minutes=30), local_hour=17),
        # Refused by the provider before it was placed.
        a_call(
            org_id,
            at=DAY + timedelta(hours=9),
            status=CallStatus.FAILED,
            local_hour=17,
        ),
    ]


async def test_stats_count_outcomes_cost_duration_and_answer_rate_by_local_hour(
    api: httpx.AsyncClient, pg_engine: Engine
) -> None:
    org_id, headers = await create_org(api)
    before = a_call(
        org_id,
        at=DAY - timedelta(days=2),
        ended_reason="customer-ended-call",
        outcome=CallOutcome.ANSWERED,
        local_hour=9,
        duration_s=240.0,
        cost=1.00,
    )
    insert(pg_engine, *known_day(org_id), before)
    window = {"from": DAY.isoformat(), "to": (DAY + timedelta(days=1)).isoformat()}

    day = await stats(api, headers, **window)

    assert day == {
        "calls": 8,
        "ended": 6,
        "by_outcome": {
            "answered": 3,
            "no_answer": 1,
            "busy": 1,
            "voicemail": 1,
            "invalid_number": 0,
            "failed": 0,
        },
        "answer_rate": 0.5,
        "total_cost": 1.08,
        "cost_per_call": 0.18,  # 1.08 over the six ended calls
        "cost_per_answered_call": 0.36,  # 1.08 over the three answered
        "average_duration_s": 84.6,  # the five calls with a duration: 423 s / 5
        "by_local_hour": [
            {"hour": 9, "calls": 3, "answered": 2, "answer_rate": 0.6667},
            {"hour": 14, "calls": 2, "answered": 1, "answer_rate": 0.5},
            {"hour": 17, "calls": 1, "answered": 0, "answer_rate": 0.0},
        ],
    }
    everything = await stats(api, headers)
    assert (everything["calls"], everything["ended"]) == (9, 7)
    assert everything["by_outcome"]["answered"] == 4
    assert everything["answer_rate"] == round(4 / 7, 4)
    assert everything["total_cost"] == 2.08
    assert everything["cost_per_call"] == round(2.08 / 7, 4)
    assert everything["cost_per_answered_call"] == 0.52
    assert everything["average_duration_s"] == 110.5
    assert everything["by_local_hour"][0] == {
        "hour": 9,
        "calls": 4,
        "answered": 3,
        "answer_rate": 0.75,
    }


async def test_the_window_is_from_inclusive_to_exclusive(
    api: httpx.AsyncClient, pg_engine: Engine
) -> None:
    org_id, headers = await create_org(api)
    first, second, *_ = known_day(org_id)
    insert(pg_engine, first, second)

    until_first = await stats(api, headers, to=DAY.isoformat())
    from_first = await stats(api, headers, **{"from": DAY.isoformat()})
    after_first = await stats(api, headers, **{"from": (DAY + timedelta(seconds=1)).isoformat()})
    # The same instant written in another zone is the same window.
    in_new_york = DAY.astimezone(ZoneInfo("America/New_York")).isoformat()
    from_first_elsewhere = await stats(api, headers, **{"from": in_new_york})

    assert until_first["calls"] == 0
    assert from_first["calls"] == from_first_elsewhere["calls"] == 2
    assert after_first["calls"] == 1
    assert after_first["total_cost"] == 0.25


async def test_an_org_without_calls_gets_zeros_and_nulls(api: httpx.AsyncClient) -> None:
    _, headers = await create_org(api)

    empty = await stats(api, headers)

    assert empty == {
        "calls": 0,
        "ended": 0,
        "by_outcome": {outcome.value: 0 for outcome in CallOutcome},
        "answer_rate": None,
        "total_cost": 0.0,
        "cost_per_call": None,
        "cost_per_answered_call": None,
        "average_duration_s": None,
        "by_local_hour": [],
    }


async def test_another_orgs_calls_are_never_counted(
    api: httpx.AsyncClient, pg_engine: Engine
) -> None:
    org_a, headers_a = await create_org(api, name="A")
    org_b, headers_b = await create_org(api, name="B")
    insert(pg_engine, *known_day(org_b))
    insert(
        pg_engine,
        a_call(
            org_a,
            at=DAY + timedelta(hours=3),
            ended_reason="customer-did-not-answer",
            outcome=CallOutcome.NO_ANSWER,
            local_hour=10,
            duration_s=30.0,
            cost=0.02,
        ),
    )

    a = await stats(api, headers_a)
    b = await stats(api, headers_b)

    assert (a["calls"], a["ended"], a["total_cost"]) == (1, 1, 0.02)
    assert a["answer_rate"] == 0.0
    assert a["by_local_hour"] == [{"hour": 10, "calls": 1, "answered": 0, "answer_rate": 0.0}]
    assert (b["calls"], b["ended"], b["total_cost"]) == (8, 6, 1.08)


async def test_bad_stats_windows_get_422_naming_the_field(api: httpx.AsyncClient) -> None:
    _, headers = await create_org(api)

    garbage = await api.get("/v1/calls/stats", params={"from": "last tuesday"}, headers=headers)
    naive = await api.get("/v1/calls/stats", params={"to": "2026-03-02T00:00:00"}, headers=headers)
    backwards = await api.get(
        "/v1/calls/stats",
        params={"from": "2026-03-03T00:00:00Z", "to": "2026-03-02T00:00:00Z"},
        headers=headers,
    )

    for response, field in ((garbage, "from"), (naive, "to"), (backwards, "to")):
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "invalid_input"
        assert [detail["field"] for detail in error["details"]] == [field]


async def test_stats_need_an_org_api_key(api: httpx.AsyncClient) -> None:
    missing = await api.get("/v1/calls/stats")
    wrong = await api.get("/v1/calls/stats", headers={"Authorization": "Bearer kw_not-a-key"})

    assert [missing.status_code, wrong.status_code] == [401, 401]
    assert missing.json()["error"]["code"] == "unauthorized"


async def test_the_lead_view_lists_its_calls_oldest_first_and_no_other_orgs(
    api: httpx.AsyncClient, pg_engine: Engine
) -> None:
    org_a, headers_a = await create_org(api, name="A")
    org_b, headers_b = await create_org(api, name="B")
    # Email only: no phone, so the lead's own workflow places no calls while we look.
    accepted = await post(api, headers_a, name="Ada", email=f"{uuid.uuid4().hex[:8]}@example.com")
    lead_id = accepted["lead_id"]
    other = await post(api, headers_b, name="Bea", email=f"{uuid.uuid4().hex[:8]}@example.com")
    await lead_when_recorded(api, headers_a, lead_id)
    await lead_when_recorded(api, headers_b, other["lead_id"])
    first = a_call(
        org_a,
        lead_id=lead_id,
        at=DAY,
        attempt=1,
        ended_reason="customer-did-not-answer",
        outcome=CallOutcome.NO_ANSWER,
        duration_s=27.5,
        cost=0.03,
    )
    second = a_call(
        org_a,
        lead_id=lead_id,
        at=DAY + timedelta(hours=2),
        attempt=2,
        ended_reason="customer-ended-call",
        outcome=CallOutcome.ANSWERED,
        duration_s=142.0,
        cost=0.41,
        summary="Ada wants a deep clean on Friday morning; asked for a quote by email.",
    )
    third = a_call(org_a, lead_id=lead_id, at=DAY + timedelta(days=1), attempt=3)
    # Org B's rows: one on its own lead, one that (wrongly) names A's lead.
    theirs = a_call(
        org_b,
        lead_id=other["lead_id"],
        at=DAY - timedelta(days=1),
        ended_reason="voicemail",
        outcome=CallOutcome.VOICEMAIL,
    )
    stray = a_call(
        org_b,
        lead_id=lead_id,
        at=DAY - timedelta(days=1),
        ended_reason="customer-busy",
        outcome=CallOutcome.BUSY,
    )
    insert(pg_engine, third, second, theirs, stray, first)  # not in time order

    response = await api.get(f"/v1/leads/{lead_id}", headers=headers_a)
    as_b = await api.get(f"/v1/leads/{lead_id}", headers=headers_b)

    assert response.status_code == 200, response.text
    lead = response.json()
    assert [call["call_id"] for call in lead["calls"]] == [first.id, second.id, third.id]
    answered = lead["calls"][1]
    assert {key: value for key, value in answered.items() if not key.endswith("_at")} == {
        "call_id": second.id,
        "attempt": 2,
        "status": "ended",
        "outcome": "answered",
        "ended_reason": "customer-ended-call",
        "duration_s": 142.0,
        "cost": 0.41,
        "summary": "Ada wants a deep clean on Friday morning; asked for a quote by email.",
    }
    assert datetime.fromisoformat(answered["placed_at"]) == second.placed_at
    assert datetime.fromisoformat(answered["ended_at"]) == second.ended_at
    ringing = lead["calls"][2]
    assert (ringing["status"], ringing["outcome"], ringing["ended_at"]) == ("queued", None, None)
    # The rest of the view is as it was.
    assert lead["lead_id"] == lead_id
    assert {"contact", "timeline", "live", "stage", "workflow_id"} <= lead.keys()
    assert as_b.status_code == 404
    theirs_view = (await api.get(f"/v1/leads/{other['lead_id']}", headers=headers_b)).json()
    assert [call["call_id"] for call in theirs_view["calls"]] == [theirs.id]
