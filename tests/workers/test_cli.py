"""The `keepwarm` command's other verbs."""

from __future__ import annotations

import pytest
from temporalio.testing import WorkflowEnvironment

from models.database import make_engine, session_scope
from models.rules.contacts import normalize_phone
from models.rules.orgs import org_settings
from models.store.orgs import get_org
from tests.conftest import ISOLATED_NAMESPACE, dev_address, make_settings
from tests.workers.processes import keepwarm_env, spawn
from workers.cli import create_org
from workers.client import connect
from workers.schedules import HEALTH_SCHEDULE


async def run(*args: str, env: dict[str, str]) -> tuple[int, str]:
    process = await spawn(*args, env=env)
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_org_create_prints_id_and_a_working_key(sqlite_url: str) -> None:
    code, out = await run(
        "org",
        "create",
        "--name",
        "Shine",
        "--timezone",
        "Europe/London",
        "--region",
        "gb",
        "--owner-email",
        "Molly@Shine.example",
        env=keepwarm_env(database_url=sqlite_url, public_url="https://shine.example"),
    )

    assert code == 0, out
    assert "org id:     org_" in out
    assert "API key:    kw_" in out
    assert "Owner link: https://shine.example/app/invite/" in out


@pytest.mark.parametrize(
    "bad", [["--timezone", "Nowhere/Special"], ["--timezone", "UTC", "--region", "XX"]]
)
async def test_org_create_refuses_bad_values(sqlite_url: str, bad: list[str]) -> None:
    code, out = await run(
        "org",
        "create",
        "--name",
        "Shine",
        "--owner-email",
        "molly@shine.example",
        *bad,
        env=keepwarm_env(database_url=sqlite_url),
    )

    assert code == 2
    assert "unknown" in out


async def test_migrate_is_idempotent_on_database_and_namespace(
    tmp_path: object, dev_server: WorkflowEnvironment
) -> None:
    env = keepwarm_env(
        database_url=f"sqlite:///{tmp_path}/fresh.db",
        temporal_address=dev_address(dev_server),
        temporal_namespace=ISOLATED_NAMESPACE,
    )

    first_code, first = await run("migrate", env=env)
    second_code, second = await run("migrate", env=env)

    assert (first_code, second_code) == (0, 0), first + second
    assert "Running upgrade  -> 0001" in first
    assert "Running upgrade" not in second
    assert "search attributes added on keepwarm-isolated: none needed" in second
    assert "schedule keepwarm-health created" in first
    assert "schedule keepwarm-health brought up to date" in second
    # Its runs must not start in the middle of other tests that use this namespace.
    client = await connect(
        make_settings(
            database_url="sqlite://",
            temporal_address=dev_address(dev_server),
            temporal_namespace=ISOLATED_NAMESPACE,
        )
    )
    await client.get_schedule_handle(HEALTH_SCHEDULE).delete()


@pytest.mark.parametrize(
    ("timezone", "given", "region"),
    [
        ("Europe/London", None, "GB"),
        ("America/Toronto", None, "CA"),
        ("Europe/London", "US", "US"),  # given: kept
        ("UTC", None, "US"),  # no one country: the default
    ],
)
def test_org_create_takes_the_phone_region_from_the_timezone(
    sqlite_url: str, timezone: str, given: str | None, region: str
) -> None:
    # The verb's own function, in process (the printing is tested above).
    org_id, _, _ = create_org(
        make_settings(database_url=sqlite_url, temporal_address="127.0.0.1:1"),
        name="Shine",
        timezone=timezone,
        region=given,
        owner=("Molly", "molly@shine.example"),
    )
    engine = make_engine(sqlite_url)
    with session_scope(engine) as session:
        settings = org_settings(get_org(session, org_id=org_id))
    engine.dispose()

    assert settings.default_region == region
    # A UK number typed the local way is a UK number for a London org.
    if region == "GB":
        assert normalize_phone("07911 123456", region=settings.default_region) == "+447911123456"
