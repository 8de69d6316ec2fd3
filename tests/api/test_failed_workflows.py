"""``GET /v1/workflows/failed`` on the dev server (the time-skipping server has no visibility
lists): an org's runs that failed or timed out, each linked to its history in the Temporal Web
UI, and none of another org's."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from api.temporal import start_reply
from models.ids import human_reply_workflow_id
from models.settings import Settings
from tests.conftest import create_org, eventually, serve
from workflows import search_attributes as sa
from workflows.calls import CallRetryWorkflow
from workflows.escalation import EscalationWorkflow
from workflows.payloads import CallRetryInput, EscalationInput
from workflows.task_queues import LEADS

UI = "https://temporal.shine.example"


async def test_runs_that_failed_or_timed_out_are_listed_for_their_org_only(
    api: httpx.AsyncClient, stack_client: Client, stack_settings: Settings
) -> None:
    org_id, headers = await create_org(api)
    _, other_headers = await create_org(api)
    # A ladder for an escalation that doesn't exist fails: its first step finds no row.
    failed = await stack_client.start_workflow(
        EscalationWorkflow.run,
        EscalationInput(org_id=org_id, escalation_id=f"esc_missing_{uuid.uuid4().hex[:8]}"),
        id=f"escalation-test-{uuid.uuid4().hex[:8]}",
        task_queue=LEADS,
    )
    # No worker polls this queue: the run times out.
    timed_out = await stack_client.start_workflow(
        EscalationWorkflow.run,
        EscalationInput(org_id=org_id, escalation_id="esc_never_routed"),
        id=f"escalation-test-{uuid.uuid4().hex[:8]}",
        task_queue=f"nobody-{uuid.uuid4().hex[:8]}",
        execution_timeout=timedelta(seconds=1),
        search_attributes=TypedSearchAttributes([SearchAttributePair(sa.ORG_ID, org_id)]),
    )
    with pytest.raises(WorkflowFailureError):
        await failed.result()

    settings = stack_settings.model_copy(update={"temporal_ui_url": UI})
    async with serve(settings) as client:

        async def both() -> list[dict[str, Any]] | None:
            listed = await client.get("/v1/workflows/failed", headers=headers)
            assert listed.status_code == 200, listed.text
            items: list[dict[str, Any]] = listed.json()["items"]
            return items if len(items) == 2 else None

        items = await eventually(both, within=30, every=0.5)
        latest = await client.get("/v1/workflows/failed", params={"limit": 1}, headers=headers)
        other = await client.get("/v1/workflows/failed", headers=other_headers)

    by_id = {item["workflow_id"]: item for item in items}
    run = by_id[failed.id]
    assert (run["workflow_type"], run["status"]) == ("Escalation", "failed")
    assert run["run_id"] == failed.result_run_id
    assert run["failure"] and "no such record" in run["failure"]
    assert run["temporal_url"] == (
        f"{UI}/namespaces/{stack_client.namespace}/workflows/{failed.id}/{run['run_id']}/history"
    )
    late = by_id[timed_out.id]
    assert late["status"] == "timed_out" and "timeout" in late["failure"]
    assert late["closed_at"] is not None
    assert [item["workflow_id"] for item in items] == sorted(
        by_id, key=lambda workflow_id: by_id[workflow_id]["closed_at"], reverse=True
    )
    assert len(latest.json()["items"]) == 1
    assert other.json()["items"] == []


async def test_a_failed_call_loop_lists_under_its_org_and_a_reply_carries_its_org(
    api: httpx.AsyncClient, stack_client: Client
) -> None:
    """A call loop starts as a Nudge's child (no attributes at start) and marks its own org;
    an operator's reply is started with it."""
    org_id, headers = await create_org(api)
    _, other_headers = await create_org(api)
    missing = f"lead_missing_{uuid.uuid4().hex[:8]}"
    loop = await stack_client.start_workflow(
        CallRetryWorkflow.run,
        CallRetryInput(
            org_id=org_id,
            lead_id=missing,
            lead_workflow_id=f"lead-{missing}",
            key_prefix=f"test/{missing}",
            text_back_key=f"test/{missing}/text-back",
        ),
        id=f"call-loop-test-{uuid.uuid4().hex[:8]}",
        task_queue=LEADS,
    )
    message_id = f"msg_missing_{uuid.uuid4().hex[:8]}"
    await start_reply(stack_client, org_id=org_id, message_id=message_id)
    with pytest.raises(WorkflowFailureError):
        await loop.result()

    async def listed() -> list[dict[str, Any]] | None:
        answer = await api.get("/v1/workflows/failed", headers=headers)
        assert answer.status_code == 200, answer.text
        items: list[dict[str, Any]] = answer.json()["items"]
        return items or None

    [item] = await eventually(listed, within=30, every=0.5)
    assert (item["workflow_type"], item["workflow_id"]) == ("CallRetry", loop.id)
    assert (await api.get("/v1/workflows/failed", headers=other_headers)).json()["items"] == []
    reply = stack_client.get_workflow_handle(human_reply_workflow_id(org_id, message_id))
    described = await reply.describe()
    assert described.typed_search_attributes.get(sa.ORG_ID) == org_id
