"""Record Lead workflow histories for the replay tests.

Run ``python -m tests.workflows.record_histories`` when a new version of the workflow ships;
commit the new files and keep the old ones: they prove that runs started on earlier code
still replay.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from models import store
from models.database import make_engine, session_scope
from models.migrate import upgrade
from models.schemas import OrgSettings
from workers.cli import find_executable
from workers.client import register_search_attributes
from workers.registry import dry_run_adapters
from workers.worker import ACTIVITY_THREADS, build_worker
from workflows.lead import IntakeReceived, LeadInput, LeadResult, LeadWorkflow

HISTORIES = Path(__file__).parent / "histories"
VERSION = "v2"


async def record() -> None:
    """Run each scenario on the time-skipping server and write its history as JSON."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=find_executable("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    await register_search_attributes(env.client)
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/keepwarm.db"
        upgrade(url)
        engine = make_engine(url)
        with session_scope(engine) as session:
            org, _ = store.create_org(session, name="Shine", settings=OrgSettings(timezone="UTC"))

        def receipt(**payload: object) -> str:
            with session_scope(engine) as session:
                row, _ = store.record_intake_receipt(
                    session, org_id=org.id, event_id=None, kind="lead", payload=payload
                )
                return row.id

        async def start(**payload: object) -> WorkflowHandle[LeadWorkflow, LeadResult]:
            return await env.client.start_workflow(
                LeadWorkflow.run,
                LeadInput(
                    org_id=org.id, lead_id=f"lead_{uuid.uuid4().hex}", receipt_id=receipt(**payload)
                ),
                id=f"lead-history-{uuid.uuid4().hex[:8]}",
                task_queue="histories",
            )

        async def save(name: str, handle: WorkflowHandle[LeadWorkflow, LeadResult]) -> None:
            history = await handle.fetch_history()
            (HISTORIES / f"lead_{VERSION}_{name}.json").write_text(history.to_json())

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
        engine.dispose()
    await env.shutdown()


if __name__ == "__main__":
    asyncio.run(record())
