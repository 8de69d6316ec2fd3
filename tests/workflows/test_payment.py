"""The PaymentFollowup workflow with time skipping (dry run): the link at once, a reminder the
day before the due date, reminders after it until paid; a failed payment's follow-up; closed
unpaid a week after the due date. Stripe's news is written as the webhook writes it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
from sqlmodel import col, select
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from models.database import session_scope
from models.services.payment_requests import create_payment_request, settle_from_stripe
from models.tables import Message, PaymentRequest
from tests.workflows.conftest import Harness
from tests.workflows.test_appointment import Visits
from tests.workflows.test_nudge import sleep_until
from workers.worker import ACTIVITY_THREADS
from workflows.payment import (
    PAYMENT_LINK_UPDATE,
    PaymentFollowupInput,
    PaymentFollowupResult,
    PaymentFollowupWorkflow,
    PaymentNews,
)


@pytest.fixture
def time_env(own_time_env: WorkflowEnvironment) -> WorkflowEnvironment:
    """A server of this module's own (its tests move the clock by weeks)."""
    return own_time_env


@pytest.fixture
async def visits(harness: Harness) -> AsyncIterator[Visits]:
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        yield Visits(harness=harness, executor=executor, task_queue=f"pay-{uuid.uuid4().hex[:8]}")


async def request(
    visits: Visits, lead_id: str, due_at: datetime
) -> tuple[str, WorkflowHandle[PaymentFollowupWorkflow, PaymentFollowupResult]]:
    harness = visits.harness
    with session_scope(harness.engine) as session:
        made = create_payment_request(
            session,
            org_id=harness.org_id,
            lead_id=lead_id,
            event_id=uuid.uuid4().hex,
            amount=12_050,
            currency="usd",
            description="deep clean {Friday}",
            due_at=due_at,
        )
    handle = await harness.env.client.start_workflow(
        PaymentFollowupWorkflow.run,
        PaymentFollowupInput(
            org_id=harness.org_id, request_id=made.payment_request_id, lead_id=lead_id
        ),
        id=made.workflow_id,
        task_queue=visits.task_queue,
    )
    return made.payment_request_id, handle


async def stripe_says(visits: Visits, request_id: str, *, paid: bool) -> None:
    """What the Stripe webhook does with a signed event for the request."""
    harness = visits.harness
    at = await visits.now()
    with session_scope(harness.engine) as session:
        settled = settle_from_stripe(
            session, org_id=harness.org_id, request_id=request_id, link_id=None, paid=paid, at=at
        )
    assert settled is not None
    await harness.env.client.get_workflow_handle(settled.workflow_id).signal(
        PaymentFollowupWorkflow.payment_changed, PaymentNews(what="paid" if paid else "failed")
    )


def bodies(visits: Visits, workflow_id: str) -> dict[str, str]:
    with session_scope(visits.harness.engine) as session:
        rows = session.exec(
            select(Message).where(col(Message.idempotency_key).startswith(f"{workflow_id}/"))
        ).all()
    return {str(row.idempotency_key).removeprefix(f"{workflow_id}/"): row.body for row in rows}


async def test_the_link_goes_at_once_and_reminders_follow_until_paid(visits: Visits) -> None:
    harness = visits.harness
    async with visits.worker():
        lead_id = await visits.lead()
        now = await visits.now()
        # On a whole second: the reminders are timed to the second, and a send lands a few
        # ms after its timer, which would cross into the next second from ...:11.973.
        due = now.replace(microsecond=0) + timedelta(days=3, seconds=1)
        request_id, handle = await request(visits, lead_id, due)
        url = await handle.execute_update(PAYMENT_LINK_UPDATE, result_type=str)
        await sleep_until(harness, due + timedelta(days=1, hours=1))
        await stripe_says(visits, request_id, paid=True)
        result = await handle.result()
        await harness.env.sleep(timedelta(days=10))

    sent = visits.sent(handle.id)
    assert [step for step, _ in sent] == ["link", "due-soon", "overdue", "paid"]
    at = dict(sent)
    assert at["link"] - now < timedelta(minutes=1)
    assert at["due-soon"] == due - timedelta(days=1)
    assert at["overdue"] == due + timedelta(days=1)
    assert (result.outcome, result.sent) == ("paid", ["link", "due-soon", "overdue", "paid"])
    texts = bodies(visits, handle.id)
    assert url == f"https://pay.dry-run.invalid/{request_id}" and url in texts["link"]
    assert "$120.50" in texts["link"] and "deep clean {Friday}" in texts["link"]
    assert "Thank you" in texts["paid"]


async def test_a_failed_payment_is_followed_up_and_an_unpaid_request_closes(
    visits: Visits,
) -> None:
    harness = visits.harness
    async with visits.worker():
        lead_id = await visits.lead()
        due = await visits.now() + timedelta(days=2)
        request_id, handle = await request(visits, lead_id, due)
        await harness.env.sleep(timedelta(hours=6))
        await stripe_says(visits, request_id, paid=False)
        failed_at = await visits.now()
        result = await handle.result()

    at = dict(visits.sent(handle.id))
    assert list(at) == ["link", "failed-1", "due-soon", "retry-1", "overdue", "final"]
    assert at["failed-1"] - failed_at.replace(microsecond=0) < timedelta(seconds=2)
    assert at["retry-1"] - at["failed-1"] - timedelta(days=2) < timedelta(seconds=2)
    assert "didn't go through" in bodies(visits, handle.id)["failed-1"]
    assert result.outcome == "unpaid"
    with session_scope(harness.engine) as session:
        row = session.get(PaymentRequest, request_id)
        assert row is not None and (row.status, row.failures) == ("unpaid", 1)
