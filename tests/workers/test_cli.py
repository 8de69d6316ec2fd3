"""The `keepwarm` command's other verbs."""

from __future__ import annotations

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.conftest import ISOLATED_NAMESPACE, dev_address, make_settings
from tests.workers.processes import keepwarm_env, spawn
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
