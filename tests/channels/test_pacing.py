"""A paced sender on the real stack (dev server, PostgreSQL, the Twilio SDK against the fake):
a batch of first touches leaves at the sender's pace, hottest lead first, each text reaching
Twilio exactly once although the worker is replaced in the middle, and a waiting lead says
why it waits."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from models.settings import Settings
from models.tables import Message
from tests.channels.conftest import Live, live_settings
from tests.conftest import ISOLATED_NAMESPACE, dev_address, eventually, serve
from tests.fakes.providers import FakeProviders
from workers.client import connect, register_search_attributes
from workers.registry import build_adapters
from workers.worker import ACTIVITY_THREADS, build_worker

#: One text every 2 seconds from the org's number.
PER_SECOND = 0.5
GAP = timedelta(seconds=1 / PER_SECOND)
#: The lead's value, and so its score (the default value tiers): the later, the hotter.
VALUES = [None, 60.0, 300.0, 1500.0]


@asynccontextmanager
async def worker(settings: Settings, client: Client, engine: Engine) -> AsyncIterator[None]:
    """A live worker of its own on the isolated namespace, shut down on exit."""
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        async with build_worker(
            client, engine=engine, adapters=build_adapters(settings), executor=executor
        ):
            yield


async def test_a_batch_leaves_at_the_senders_pace_hottest_first_across_a_worker_restart(
    pg_url: str,
    pg_engine: Engine,
    dev_server: WorkflowEnvironment,
    fake_providers: FakeProviders,
) -> None:
    settings = live_settings(pg_url, dev_address(dev_server), fake_providers).model_copy(
        update={"temporal_namespace": ISOLATED_NAMESPACE}
    )
    client = await connect(settings)
    await register_search_attributes(client)
    async with serve(settings) as api:
        live = Live(api=api, client=client, fake=fake_providers, settings=settings)
        _, headers = await live.org()
        # A number of its own: a number's queue is shared by every org that sends from it.
        number = f"+4479111{uuid.uuid4().int % 10**5:05d}"
        paced = await api.patch(
            "/v1/orgs/me",
            json={
                "sms_from": number,
                "pacing": {"sms": PER_SECOND},
                "quiet_hours": {"sms": None, "whatsapp": None, "voice": None, "email": None},
            },
            headers=headers,
        )
        assert paced.status_code == 200, paced.text
        assert paced.json()["pacing"] == {
            "sms": PER_SECOND,
            "whatsapp": None,
            "email": None,
            "calls": None,
        }

        async def post(i: int, value: float | None) -> str:
            body: dict[str, object] = {
                "name": f"Lead {i}",
                "phone": f"+44791112{i:04d}",
                "consent": {"sms": True},
            }
            if value is not None:
                body["value"] = value
            accepted = await api.post("/v1/leads", json=body, headers=headers)
            assert accepted.status_code == 202, accepted.text
            lead_id: str = accepted.json()["lead_id"]
            return lead_id

        # Five leads at once, posted before the worker runs so that all five ask for the
        # number together (posted one by one to a running worker, the hottest, posted last,
        # could ask after the next slot had gone to a colder one on a slow machine): the
        # first to reach the idle number goes, the rest queue.
        leads = [await post(i, value) for i, value in enumerate([None, *VALUES])]
        async with worker(settings, client, pg_engine):

            async def scored() -> dict[str, int] | None:
                # A lead's row is written by its workflow, a moment after the 202.
                found: dict[str, int] = {}
                for lead in leads:
                    detail = await api.get(f"/v1/leads/{lead}", headers=headers)
                    if detail.status_code != 200:
                        return None
                    found[lead] = int(detail.json()["score"])
                return found

            scores = await eventually(scored)
            assert len(set(scores[lead] for lead in leads[1:])) == len(VALUES)

            async def waiting_reason() -> str | None:
                for lead in leads:
                    live_state = (await api.get(f"/v1/leads/{lead}", headers=headers)).json()
                    reason = (live_state.get("live") or {}).get("waiting_reason") or ""
                    if "paced" in reason:
                        return str(reason)
                return None

            reason = await eventually(waiting_reason, within=20)
            assert "sends one every 2 seconds" in reason

            async def texted(count: int) -> bool:
                return len(fake_providers.objects("twilio")) >= count

            await eventually(lambda: texted(2), within=20, every=0.1)
        # The worker is replaced while three texts still wait their turn.
        async with worker(settings, client, pg_engine):
            await eventually(lambda: texted(5), within=60, every=0.2)
            await asyncio.sleep(GAP.total_seconds())  # nothing more comes

    sent = fake_providers.objects("twilio")
    assert sorted(text["to"] for text in sent) == sorted(
        f"+44791112{i:04d}" for i in range(len(leads))
    )  # each lead texted once: none lost, none doubled
    with Session(pg_engine) as session:
        rows = session.exec(
            select(Message)
            .where(col(Message.lead_id).in_(leads))
            .order_by(col(Message.attempted_at))
        ).all()
    assert len(rows) == len(leads)
    order = [str(row.lead_id) for row in rows]
    # After whichever took the idle number's slot, the hottest lead first.
    assert order[1:] == sorted(order[1:], key=lambda lead: -scores[lead])
    times = [row.attempted_at for row in rows]
    assert all(time is not None for time in times)
    for i, before in enumerate(times):
        for j in range(i + 1, len(times)):
            after = times[j]
            assert before is not None and after is not None
            # k sends span at least k - 2 gaps: a slot taken late is counted from when it was
            # due, so the next may follow it sooner, never two sooner.
            assert after - before > GAP * (j - i - 1), (i, j, before, after)
