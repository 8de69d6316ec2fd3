"""Record Lead workflow histories for the replay tests.

Run ``python -m tests.workflows.record_histories`` when a new version of the workflow ships;
commit the new files and keep the old ones: they prove that runs started on earlier code
still replay.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import col, select
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from models.database import make_engine, session_scope
from models.ids import ladder_id, takeover_workflow_id
from models.migrate import upgrade
from models.schemas import (
    OrgSettings,
    QuietHours,
    SendPacing,
    SequenceIn,
    SequenceStep,
    Variant,
)
from models.services.bookings import book, booking_reply, move_booking, record_visit_event
from models.services.escalations import escalate_thread
from models.services.operators import create_operator
from models.services.orgs import create_org
from models.services.payment_requests import create_payment_request, settle_from_stripe
from models.services.replies import claim_reply
from models.services.sequences import put_sequence
from models.services.takeover import take_over
from models.store.contacts import resolve_contact
from models.store.orgs import get_org
from models.store.receipts import record_intake_receipt
from models.store.threads import thread_of, thread_of_contact
from models.tables import Booking, Call, Lead
from models.values import Channel, Intent, OperatorRole, Priority, ProviderMode, VisitEvent
from tests.models.test_experiments import withdraw_sms
from tests.workflows.conftest import ANY_HOUR
from tests.workflows.test_call_retry import ScriptedCalls, end_call
from workers.cli import find_executable
from workers.client import register_search_attributes
from workers.converter import DATA_CONVERTER
from workers.registry import dry_run_adapters
from workers.worker import ACTIVITY_THREADS, build_worker
from workflows.appointment import AppointmentInput, AppointmentWorkflow, BookingNews
from workflows.calls import CallInput, CallRetryWorkflow, CallWorkflow
from workflows.escalation import EscalationWorkflow
from workflows.lead import (
    BookingReceived,
    ConsentChanged,
    IntakeReceived,
    LeadInput,
    LeadResult,
    LeadWorkflow,
    PaymentReceived,
    ReplyReceived,
)
from workflows.payloads import TAKEOVER_CHANGED_SIGNAL, EscalationAck, EscalationInput, HoldChanged
from workflows.payment import PaymentFollowupInput, PaymentFollowupWorkflow, PaymentNews
from workflows.takeover import (
    HumanReplyWorkflow,
    StoredMessageInput,
    TakeoverInput,
    TakeoverWorkflow,
)

HISTORIES = Path(__file__).parent / "histories"
VERSION = "v15"


async def record() -> None:
    """Run each scenario on the time-skipping server and write its history as JSON."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=find_executable("temporal-test-server"),
        data_converter=DATA_CONVERTER,
    )
    await register_search_attributes(env.client)
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/keepwarm.db"
        upgrade(url)
        engine = make_engine(url)
        with session_scope(engine) as session:
            org, _ = create_org(
                session, name="Shine", settings=OrgSettings(timezone="UTC", quiet_hours=ANY_HOUR)
            )

        def receipt(org_id: str = org.id, **payload: object) -> str:
            with session_scope(engine) as session:
                row, _ = record_intake_receipt(
                    session, org_id=org_id, event_id=None, kind="lead", payload=payload
                )
                return row.id

        lead_ids: dict[str, str] = {}

        async def start(
            history_limit: int | None = None, org_id: str = org.id, **payload: object
        ) -> WorkflowHandle[LeadWorkflow, LeadResult]:
            lead_id = f"lead_{uuid.uuid4().hex}"
            handle = await env.client.start_workflow(
                LeadWorkflow.run,
                LeadInput(
                    org_id=org_id,
                    lead_id=lead_id,
                    receipt_id=receipt(org_id=org_id, **payload),
                    history_limit=history_limit,
                ),
                id=f"lead-history-{uuid.uuid4().hex[:8]}",
                task_queue="histories",
            )
            lead_ids[handle.id] = lead_id
            return handle

        async def save(name: str, handle: WorkflowHandle[Any, Any], kind: str = "lead") -> None:
            history = await handle.fetch_history()
            (HISTORIES / f"{kind}_{VERSION}_{name}.json").write_text(history.to_json())

        with ThreadPoolExecutor(ACTIVITY_THREADS) as executor:
            worker = build_worker(
                env.client,
                engine=engine,
                adapters=dry_run_adapters(),
                task_queue="histories",
                executor=executor,
            )
            async with worker:
                lost = await start(phone="+447911123456", consent={"sms": True})
                await lost.result()
                await save("sms_to_lost", lost)

                hot = await start(
                    phone="+447911123459", consent={"sms": True}, value=2000, source="referral"
                )
                await hot.result()
                await save("hot_sequence_to_lost", hot)
                nudge = env.client.get_workflow_handle(f"{lead_ids[hot.id]}/nudge-1")
                await save("hot_sequence", nudge, kind="nudge")

                repeat = await start(email="ada@example.com")
                await env.sleep(timedelta(days=1))
                await repeat.signal(
                    LeadWorkflow.intake_received,
                    IntakeReceived(receipt_id=receipt(email="ada@example.com")),
                )
                await repeat.result()
                await save("email_repeat_intake_to_lost", repeat)

                silent = await start(phone="+447911654321")
                await silent.result()
                await save("no_consent_to_lost", silent)

                replied = await start(phone="+447911123457", consent={"sms": True})
                await env.sleep(timedelta(hours=3))
                await replied.signal(
                    LeadWorkflow.message_received,
                    ReplyReceived(message_id="msg_reply", channel=Channel.SMS),
                )
                await replied.result()
                await save("sms_reply_engaged_to_lost", replied)

                paying = await start(email="grace@example.com")
                await env.sleep(timedelta(hours=3))
                await paying.signal(
                    LeadWorkflow.payment_received,
                    PaymentReceived(payment_id="pay_1", status="paid"),
                )
                await paying.result()
                await save("email_paid_converted", paying)

                booking = await start(
                    phone="+447911123460", consent={"sms": True}, value=2000, source="referral"
                )
                await env.sleep(timedelta(minutes=20))
                await booking.signal(
                    LeadWorkflow.booking_received, BookingReceived(booking_id="rcpt_booked")
                )
                await booking.result()
                await save("hot_sequence_booked_converted", booking)

                leaving = await start(
                    phone="+447911123463", consent={"sms": True}, value=2000, source="referral"
                )
                await env.sleep(timedelta(minutes=20))
                await leaving.signal(
                    LeadWorkflow.consent_changed,
                    ConsentChanged(channel=Channel.SMS, granted=False, opted_out_everywhere=True),
                )
                await leaving.result()
                await save("hot_sequence_opted_out", leaving)

                long = await start(
                    history_limit=40,
                    phone="+447911123461",
                    consent={"sms": True},
                    value=2000,
                    source="referral",
                )
                await env.sleep(timedelta(minutes=20))
                first_run = (await long.describe()).run_id
                for _ in range(8):
                    await long.signal(
                        LeadWorkflow.intake_received,
                        IntakeReceived(receipt_id=receipt(phone="+447911123461")),
                    )
                    await env.sleep(timedelta(minutes=1))
                await long.result()
                before = env.client.get_workflow_handle(long.id, run_id=first_run)
                await save("hot_sequence_continued_as_new_first_run", before)
                await save("hot_sequence_continued_as_new_last_run", long)
                for run in (1, 2):
                    nudge = env.client.get_workflow_handle(f"{lead_ids[long.id]}/nudge-{run}")
                    await save(f"hot_sequence_continued_run_{run}", nudge, kind="nudge")

                with session_scope(engine) as session:
                    night, _ = create_org(
                        session,
                        name="Night",
                        settings=OrgSettings(
                            timezone="UTC", quiet_hours=QuietHours(sms=["08:00", "09:00"])
                        ),
                    )
                now = await env.get_current_time()
                ten = datetime.combine(now.date() + timedelta(days=1), time(10), UTC)
                await env.sleep(ten - now)
                held = await start(org_id=night.id, phone="+447911123462", consent={"sms": True})
                await held.result()
                await save("sms_held_back_until_morning", held)

                lead_id = f"lead_{uuid.uuid4().hex}"
                with_call = await env.client.start_workflow(
                    LeadWorkflow.run,
                    LeadInput(
                        org_id=org.id,
                        lead_id=lead_id,
                        receipt_id=receipt(phone="+447911123458", consent={"sms": True}),
                    ),
                    id=f"lead-history-{uuid.uuid4().hex[:8]}",
                    task_queue="histories",
                )
                await env.sleep(timedelta(minutes=1))
                call = await env.client.start_workflow(
                    CallWorkflow.run,
                    CallInput(org_id=org.id, lead_id=lead_id),
                    id=f"{with_call.id}/calls-1",
                    task_queue="histories",
                )
                await call.result()
                await save("dry_run_simulated", call, kind="call")
                await with_call.terminate("recorded")
        # A voice step's call-retry loop: voicemail (one text-back), then no answer, then
        # the cap (two attempts) opens an escalation and the lead goes ghosting.
        await on_own_server(_call_retry_scenario, engine, save)
        # An operator takes a lead's thread over while its sequence waits, replies, and
        # lets the hold run out (30 min idle); the sequence resumes and the lead ends lost.
        await on_own_server(_takeover_scenario, engine, save)
        # A complaint with nobody online: queued at level 0, climbs to the owner's phone at
        # the 15-minute SLA, then resolved.
        await on_own_server(_escalation_scenario, engine, save)
        engine.dispose()
    await env.shutdown()


Scenario = Callable[
    [WorkflowEnvironment, Engine, ThreadPoolExecutor, Callable[..., Awaitable[None]]],
    Awaitable[None],
]


async def on_own_server(
    scenario: Scenario, engine: Engine, save: Callable[..., Awaitable[None]]
) -> None:
    """Run ``scenario`` on a time-skipping server of its own: a clock the earlier scenarios
    never locked."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=find_executable("temporal-test-server"),
        data_converter=DATA_CONVERTER,
    )
    await register_search_attributes(env.client)
    try:
        with ThreadPoolExecutor(ACTIVITY_THREADS) as executor:
            await scenario(env, engine, executor, save)
    finally:
        await env.shutdown()


async def _call_retry_scenario(
    env: WorkflowEnvironment,
    engine: Engine,
    executor: ThreadPoolExecutor,
    save: Callable[..., Awaitable[None]],
) -> None:
    with session_scope(engine) as session:
        org, _ = create_org(
            session,
            name="Callers",
            settings=OrgSettings(
                timezone="UTC",
                quiet_hours=ANY_HOUR,
                call_policy={"max_attempts": 2, "spacing": ["PT5M"]},
                touch_budget={"per_24h": 10},
            ),
        )
        put_sequence(
            session,
            org_id=org.id,
            name="call-them",
            body=SequenceIn(
                applies_to=list(Intent),
                steps=[
                    SequenceStep(after=timedelta(minutes=10), channel=Channel.VOICE, template="-")
                ],
                max_attempts=1,
            ),
        )
        receipt, _ = record_intake_receipt(
            session,
            org_id=org.id,
            event_id=None,
            kind="lead",
            payload={"phone": "+447911123450", "consent": {"sms": True, "voice": True}},
        )
    scripted = ScriptedCalls()
    adapters = dataclasses.replace(dry_run_adapters(), placers={ProviderMode.DRY_RUN: scripted})
    worker = build_worker(
        env.client,
        engine=engine,
        adapters=adapters,
        task_queue="histories-calls",
        executor=executor,
    )
    lead_id = f"lead_{uuid.uuid4().hex}"
    async with worker:
        lead = await env.client.start_workflow(
            LeadWorkflow.run,
            LeadInput(org_id=org.id, lead_id=lead_id, receipt_id=receipt.id),
            id=f"lead-history-{uuid.uuid4().hex[:8]}",
            task_queue="histories-calls",
        )
        for reason in ("voicemail", "customer-did-not-answer"):
            for _ in range(100):
                await env.sleep(timedelta(minutes=1))
                with session_scope(engine) as session:
                    call = session.exec(
                        select(Call).where(
                            Call.lead_id == lead_id,
                            col(Call.provider_call_id).is_not(None),
                            col(Call.outcome).is_(None),
                        )
                    ).first()
                if call is None:
                    continue
                await env.client.get_workflow_handle(call.workflow_id).signal(
                    CallRetryWorkflow.call_ended, end_call(engine, call, reason)
                )
                break
        loop = env.client.get_workflow_handle(f"{lead_id}/calls-1")
        await loop.result()
        await lead.result()
        await save("voicemail_then_cap", loop, kind="calls")
        await save("voice_step", env.client.get_workflow_handle(f"{lead_id}/nudge-1"), kind="nudge")
        await save("calls_exhausted_to_lost", lead)


async def _takeover_scenario(
    env: WorkflowEnvironment,
    engine: Engine,
    executor: ThreadPoolExecutor,
    save: Callable[..., Awaitable[None]],
) -> None:
    with session_scope(engine) as session:
        org, _ = create_org(
            session,
            name="Holders",
            settings=OrgSettings(timezone="UTC", quiet_hours=ANY_HOUR),
        )
        put_sequence(
            session,
            org_id=org.id,
            name="nudge",
            body=SequenceIn(
                applies_to=list(Intent),
                steps=[
                    SequenceStep(after=timedelta(hours=1), channel=Channel.SMS, template="One"),
                    SequenceStep(after=timedelta(hours=1), channel=Channel.SMS, template="Two"),
                ],
                max_attempts=2,
            ),
        )
        operator = create_operator(
            session, org_id=org.id, name="Ada", role=OperatorRole.OPERATOR, phone="+447700900444"
        ).operator
        receipt, _ = record_intake_receipt(
            session,
            org_id=org.id,
            event_id=None,
            kind="lead",
            payload={"phone": "+447911123470", "consent": {"sms": True}},
        )
    worker = build_worker(
        env.client,
        engine=engine,
        adapters=dry_run_adapters(),
        task_queue="histories-takeover",
        executor=executor,
    )
    lead_id = f"lead_{uuid.uuid4().hex}"
    async with worker:
        lead = await env.client.start_workflow(
            LeadWorkflow.run,
            LeadInput(org_id=org.id, lead_id=lead_id, receipt_id=receipt.id),
            id=f"lead-history-{uuid.uuid4().hex[:8]}",
            task_queue="histories-takeover",
        )
        await env.sleep(timedelta(minutes=70))  # the sequence is running, step 1 sent
        with session_scope(engine) as session:
            row = session.get(Lead, lead_id)
            assert row is not None
            thread_id = thread_of(session, org_id=org.id, lead=row)
            assert thread_id is not None
            take_over(
                session,
                org_id=org.id,
                thread_id=thread_id,
                operator_id=operator.id,
                now=await env.get_current_time(),
            )
        holder = await env.client.start_workflow(
            TakeoverWorkflow.run,
            TakeoverInput(org_id=org.id, thread_id=thread_id),
            id=takeover_workflow_id(org.id, thread_id),
            task_queue="histories-takeover",
            start_signal=TAKEOVER_CHANGED_SIGNAL,
            start_signal_args=[HoldChanged(operator_id=operator.id, held=True)],
        )
        await env.sleep(timedelta(minutes=10))
        with session_scope(engine) as session:
            claim = claim_reply(
                session,
                org_id=org.id,
                thread_id=thread_id,
                operator_id=operator.id,
                body="Ada here: Tuesday works.",
                channel=None,
                key=f"reply/{uuid.uuid4().hex}",
                now=await env.get_current_time(),
            )
        reply = await env.client.start_workflow(
            HumanReplyWorkflow.run,
            StoredMessageInput(org_id=org.id, message_id=claim.message.id),
            id=f"reply-{org.id}-{claim.message.id}",
            task_queue="histories-takeover",
        )
        await lead.result()  # the hold runs out, the sequence resumes, the lead ends lost
        await save("reply_then_idle_release", holder, kind="takeover")
        await save("sent", reply, kind="reply")
        await save("held_then_released_to_lost", lead)
        await save(
            "held_then_released", env.client.get_workflow_handle(f"{lead_id}/nudge-1"), kind="nudge"
        )


async def _escalation_scenario(
    env: WorkflowEnvironment,
    engine: Engine,
    executor: ThreadPoolExecutor,
    save: Callable[..., Awaitable[None]],
) -> None:
    with session_scope(engine) as session:
        org, _ = create_org(
            session, name="Ladder", settings=OrgSettings(timezone="UTC", quiet_hours=ANY_HOUR)
        )
        create_operator(
            session, org_id=org.id, name="Owen", role=OperatorRole.OWNER, phone="+447911123471"
        )
        contact = resolve_contact(session, org_id=org.id, payload={"phone": "+447911123472"})
        thread_id = thread_of_contact(session, contact_id=contact.id)
        assert thread_id is not None
        row, _ = escalate_thread(
            session,
            org_id=org.id,
            thread_id=thread_id,
            reason="complaint",
            priority=Priority.HIGH,
            summary="Says the clean was not finished.",
        )
    worker = build_worker(
        env.client,
        engine=engine,
        adapters=dry_run_adapters(),
        task_queue="histories-escalation",
        executor=executor,
    )
    async with worker:
        ladder = await env.client.start_workflow(
            EscalationWorkflow.run,
            EscalationInput(org_id=org.id, escalation_id=row.id),
            id=ladder_id(row),
            task_queue="histories-escalation",
        )
        await env.sleep(timedelta(minutes=20))
        await ladder.signal(EscalationWorkflow.resolved, EscalationAck(operator_id="owner"))
        await ladder.result()
        await save("complaint_climbed_to_owner_resolved", ladder, kind="escalation")


async def _lead_for_scenario(
    env: WorkflowEnvironment, engine: Engine, *, name: str, phone: str, task_queue: str
) -> tuple[str, str, WorkflowHandle[LeadWorkflow, LeadResult]]:
    """A new org (quiet hours off) and a Lead workflow for Ada by SMS on ``task_queue``."""
    with session_scope(engine) as session:
        org, _ = create_org(
            session, name=name, settings=OrgSettings(timezone="UTC", quiet_hours=ANY_HOUR)
        )
        intake, _ = record_intake_receipt(
            session,
            org_id=org.id,
            event_id=None,
            kind="lead",
            payload={"phone": phone, "consent": {"sms": True}, "name": "Ada"},
        )
    lead_id = f"lead_{uuid.uuid4().hex}"
    lead = await env.client.start_workflow(
        LeadWorkflow.run,
        LeadInput(org_id=org.id, lead_id=lead_id, receipt_id=intake.id),
        id=f"lead-history-{uuid.uuid4().hex[:8]}",
        task_queue=task_queue,
    )
    return org.id, lead_id, lead


async def _appointment_scenario(
    env: WorkflowEnvironment,
    engine: Engine,
    executor: ThreadPoolExecutor,
    save: Callable[..., Awaitable[None]],
) -> None:
    """A visit booked three days out, moved once, confirmed by C, completed and rated 5."""
    org_id, lead_id, lead = await _lead_for_scenario(
        env, engine, name="Visits", phone="+447911123481", task_queue="histories-appointment"
    )
    worker = build_worker(
        env.client,
        engine=engine,
        adapters=dry_run_adapters(),
        task_queue="histories-appointment",
        executor=executor,
    )
    async with worker:
        await env.sleep(timedelta(minutes=1))
        now = await env.get_current_time()
        with session_scope(engine) as session:
            made = book(
                session,
                org_id=org_id,
                lead_id=lead_id,
                event_id="history-1",
                starts_at=now + timedelta(days=3),
                ends_at=None,
                provider_id=None,
                service="deep clean",
                address=None,
                note=None,
            )
            row = session.get(Booking, made.booking_id)
            assert row is not None
            contact_id = row.contact_id
        visit = await env.client.start_workflow(
            AppointmentWorkflow.run,
            AppointmentInput(org_id=org_id, booking_id=made.booking_id, lead_id=lead_id),
            id=made.workflow_id,
            task_queue="histories-appointment",
        )
        await env.sleep(timedelta(hours=1))
        starts_at = now + timedelta(days=4)
        with session_scope(engine) as session:
            move_booking(
                session,
                org_id=org_id,
                booking_id=made.booking_id,
                starts_at=starts_at,
                ends_at=None,
                provider_id=None,
                now=await env.get_current_time(),
            )
        await visit.signal(AppointmentWorkflow.booking_changed, BookingNews(what="moved"))
        await env.sleep(timedelta(hours=1))

        async def news(change: Callable[[Any, datetime], object]) -> None:
            at = await env.get_current_time()
            with session_scope(engine) as session:
                change(session, at)
            await visit.signal(AppointmentWorkflow.booking_changed, BookingNews(what="news"))

        def reply(body: str) -> Callable[[Any, datetime], object]:
            return lambda session, at: booking_reply(
                session,
                org=get_org(session, org_id=org_id),
                contact_id=contact_id,
                body=body,
                now=at,
            )

        await news(reply("C"))
        await env.sleep(starts_at + timedelta(hours=1) - await env.get_current_time())
        await news(
            lambda session, at: record_visit_event(
                session,
                org_id=org_id,
                booking_id=made.booking_id,
                kind=VisitEvent.COMPLETED,
                at=None,
                now=at,
            )
        )
        await env.sleep(timedelta(hours=2))
        await news(reply("5"))
        await visit.result()
        await save("moved_confirmed_completed_rated", visit, kind="appointment")
        await lead.terminate("recorded")


async def _payment_scenario(
    env: WorkflowEnvironment,
    engine: Engine,
    executor: ThreadPoolExecutor,
    save: Callable[..., Awaitable[None]],
) -> None:
    """A payment request due in three days: the link, the reminder before, a failed payment
    and its notice, then paid (dry run)."""
    org_id, lead_id, lead = await _lead_for_scenario(
        env, engine, name="Pay", phone="+447911123482", task_queue="histories-payment"
    )
    worker = build_worker(
        env.client,
        engine=engine,
        adapters=dry_run_adapters(),
        task_queue="histories-payment",
        executor=executor,
    )
    async with worker:
        await env.sleep(timedelta(minutes=1))
        now = await env.get_current_time()
        with session_scope(engine) as session:
            made = create_payment_request(
                session,
                org_id=org_id,
                lead_id=lead_id,
                event_id="history-pay-1",
                amount=12_050,
                currency="usd",
                description="deep clean",
                due_at=now + timedelta(days=3),
            )
        payment = await env.client.start_workflow(
            PaymentFollowupWorkflow.run,
            PaymentFollowupInput(
                org_id=org_id, request_id=made.payment_request_id, lead_id=lead_id
            ),
            id=made.workflow_id,
            task_queue="histories-payment",
        )
        for paid, after in ((False, timedelta(days=2, hours=1)), (True, timedelta(days=1))):
            await env.sleep(after)
            with session_scope(engine) as session:
                settle_from_stripe(
                    session,
                    org_id=org_id,
                    request_id=made.payment_request_id,
                    link_id=None,
                    paid=paid,
                    at=await env.get_current_time(),
                )
            await payment.signal(PaymentFollowupWorkflow.payment_changed, PaymentNews(what="x"))
        await payment.result()
        await save("failed_then_paid", payment, kind="payment")
        await lead.terminate("recorded")


async def _experiment_scenario(
    env: WorkflowEnvironment,
    engine: Engine,
    executor: ThreadPoolExecutor,
    save: Callable[..., Awaitable[None]],
) -> None:
    """A sequence whose first step is an A/B test; the person texts STOP after it: the
    plain SMS step is skipped (a note, no message) and the one with a fallback goes by email."""
    with session_scope(engine) as session:
        org, _ = create_org(
            session, name="Tests", settings=OrgSettings(timezone="UTC", quiet_hours=ANY_HOUR)
        )
        put_sequence(
            session,
            org_id=org.id,
            name="experiment",
            body=SequenceIn(
                applies_to=list(Intent),
                steps=[
                    SequenceStep(
                        after=timedelta(minutes=15),
                        channel=Channel.SMS,
                        variants=[
                            Variant(name="a", template="A for {first_name}"),
                            Variant(name="b", template="B for {first_name}"),
                        ],
                    ),
                    SequenceStep(after=timedelta(hours=2), channel=Channel.SMS, template="Two"),
                    SequenceStep(
                        after=timedelta(hours=2),
                        channel=Channel.SMS,
                        template="Three",
                        fallback=[Channel.EMAIL],
                    ),
                ],
                max_attempts=3,
            ),
        )
        intake, _ = record_intake_receipt(
            session,
            org_id=org.id,
            event_id=None,
            kind="lead",
            payload={
                "phone": "+447911123470",
                "email": "ada@example.com",
                "consent": {"sms": True},
                "name": "Ada",
            },
        )
    lead_id = f"lead_{uuid.uuid4().hex}"
    async with build_worker(
        env.client,
        engine=engine,
        adapters=dry_run_adapters(),
        task_queue="experiments",
        executor=executor,
    ):
        lead = await env.client.start_workflow(
            LeadWorkflow.run,
            LeadInput(org_id=org.id, lead_id=lead_id, receipt_id=intake.id),
            id=f"lead-history-{uuid.uuid4().hex[:8]}",
            task_queue="experiments",
        )
        await env.sleep(timedelta(minutes=20))
        withdraw_sms(engine, org.id, lead_id)
        await lead.signal(
            LeadWorkflow.consent_changed,
            ConsentChanged(channel=Channel.SMS, granted=False, opted_out_everywhere=False),
        )
        await lead.result()
        await save("experiment_stop_fallback_to_lost", lead)
        nudge = env.client.get_workflow_handle(f"{lead_id}/nudge-1")
        await save("experiment_stop_fallback", nudge, kind="nudge")


async def _paced_scenario(
    env: WorkflowEnvironment,
    engine: Engine,
    executor: ThreadPoolExecutor,
    save: Callable[..., Awaitable[None]],
) -> None:
    """Two leads at once from a number paced at one text every 2 s: the second's first touch
    waits its turn (a pace hold, shorter than a second's floor allows) and then goes."""
    with session_scope(engine) as session:
        org, _ = create_org(
            session,
            name="Tests",
            settings=OrgSettings(
                timezone="UTC",
                quiet_hours=ANY_HOUR,
                sms_from="+447911123480",
                pacing=SendPacing(sms=0.5),
            ),
        )
        receipts = [
            record_intake_receipt(
                session,
                org_id=org.id,
                event_id=None,
                kind="lead",
                payload={"phone": phone, "consent": {"sms": True}, "name": name},
            )[0]
            for phone, name in (("+447911123481", "Ada"), ("+447911123482", "Grace"))
        ]
    async with build_worker(
        env.client,
        engine=engine,
        adapters=dry_run_adapters(),
        task_queue="paced",
        executor=executor,
    ):
        leads = [
            await env.client.start_workflow(
                LeadWorkflow.run,
                LeadInput(org_id=org.id, lead_id=f"lead_{uuid.uuid4().hex}", receipt_id=receipt.id),
                id=f"lead-history-{uuid.uuid4().hex[:8]}",
                task_queue="paced",
            )
            for receipt in receipts
        ]
        for lead in leads:
            await lead.result()
        for i, lead in enumerate(leads, start=1):
            await save(f"paced_first_touch_{i}", lead)


async def _contacted_scenario(
    env: WorkflowEnvironment,
    engine: Engine,
    executor: ThreadPoolExecutor,
    save: Callable[..., Awaitable[None]],
) -> None:
    """A lead texted and never answering, to lost: its first touch's send records it
    contacted (no ``record_stage`` of the run's own for it)."""
    async with build_worker(
        env.client,
        engine=engine,
        adapters=dry_run_adapters(),
        task_queue="contacted",
        executor=executor,
    ):
        _, _, lead = await _lead_for_scenario(
            env, engine, name="Shine", phone="+447911123483", task_queue="contacted"
        )
        await lead.result()
        await save("sms_contacted_with_send_to_lost", lead)


async def record_one(scenario: Scenario) -> None:
    """Record one scenario's histories (a workflow new in this version) on a fresh database."""
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/keepwarm.db"
        upgrade(url)
        engine = make_engine(url)

        async def save(name: str, handle: WorkflowHandle[Any, Any], kind: str = "lead") -> None:
            history = await handle.fetch_history()
            (HISTORIES / f"{kind}_{VERSION}_{name}.json").write_text(history.to_json())

        await on_own_server(scenario, engine, save)
        engine.dispose()


#: Scenarios that can be recorded alone: ``python -m tests.workflows.record_histories NAME``.
ALONE: dict[str, Scenario] = {
    "appointment": _appointment_scenario,
    "payment": _payment_scenario,
    "experiment": _experiment_scenario,
    "paced": _paced_scenario,
    "contacted": _contacted_scenario,
}

if __name__ == "__main__":
    if len(sys.argv) > 1:
        asyncio.run(record_one(ALONE[sys.argv[1]]))
    else:
        asyncio.run(record())
