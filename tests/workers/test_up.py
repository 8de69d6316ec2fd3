"""`keepwarm up`, the README's run command: everything up, a lead worked, Ctrl-C, data kept."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
from temporalio.client import Client

from tests.conftest import eventually
from tests.workers.processes import (
    drain,
    free_port,
    keepwarm_env,
    read_until,
    spawn,
    stopped_at_exit,
)
from workers.converter import DATA_CONVERTER


async def test_up_runs_the_stack_and_keeps_data_across_restarts(tmp_path: Path) -> None:
    api_port, temporal_port, ui_port = free_port(), free_port(), free_port()
    env = keepwarm_env(
        data_dir=str(tmp_path / "data"),
        api_port=str(api_port),
        temporal_dev_port=str(temporal_port),
        temporal_ui_port=str(ui_port),
    )
    base = f"http://127.0.0.1:{api_port}"

    up = await spawn("up", env=env)
    async with stopped_at_exit(up):
        banner = await read_until(up, "Data ", within=120)
        output = drain(up)
        key = (tmp_path / "data" / "demo_api_key").read_text().strip()
        headers = {"Authorization": f"Bearer {key}"}
        assert f"{base}/docs" in banner
        assert f"http://127.0.0.1:{ui_port}" in banner
        assert key in banner
        assert f"{base}/app/invite/" in banner  # the demo owner's one-time setup link
        assert (tmp_path / "data" / "admin_token").stat().st_mode & 0o077 == 0

        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            # Quiet hours would hold the SMS back at night; they are tested on their own.
            any_hour = {"sms": None, "whatsapp": None, "voice": None, "email": None}
            patched = await http.patch(
                "/v1/orgs/me", json={"quiet_hours": any_hour}, headers=headers
            )
            assert patched.status_code == 200, patched.text
            accepted = await http.post(
                "/v1/leads",
                json={"name": "Ada", "phone": "+44 7911 123456", "consent": {"sms": True}},
                headers=headers,
            )
            assert accepted.status_code == 202, accepted.text
            lead = accepted.json()

            async def simulated() -> list[dict[str, str]]:
                items = (await http.get("/v1/messages", headers=headers)).json()["items"]
                return [item for item in items if item["status"] == "simulated"]

            [message] = await eventually(simulated)
            assert message["channel"] == "sms"
            assert (await http.get(f"http://127.0.0.1:{ui_port}/")).status_code == 200
            assert (await http.get("/readyz")).status_code == 200

        client = await Client.connect(f"127.0.0.1:{temporal_port}", data_converter=DATA_CONVERTER)

        async def listed_by_stage() -> list[str]:
            return [
                execution.id async for execution in client.list_workflows('LeadStage = "contacted"')
            ]

        assert await eventually(listed_by_stage) == [lead["workflow_id"]]
        description = await client.get_workflow_handle(lead["workflow_id"]).describe()
        assert await description.static_summary() == "Lead from direct"

        up.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(up.wait(), timeout=60) == 0
        await output

    again = await spawn("up", env=env)
    async with stopped_at_exit(again):
        banner = await read_until(again, "Data ", within=120)
        output = drain(again)
        assert key not in banner  # secrets are printed only by the run that made them
        assert str(tmp_path / "data" / "demo_api_key") in banner
        # The owner has no password yet: a fresh setup link (the earlier one stops working).
        assert f"{base}/app/invite/" in banner
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            leads = (await http.get("/v1/leads", headers=headers)).json()["items"]
            assert [item["lead_id"] for item in leads] == [lead["lead_id"]]
            detail = (await http.get(f"/v1/leads/{lead['lead_id']}", headers=headers)).json()
            assert detail["live"]["status"] == "running"
        again.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(again.wait(), timeout=60) == 0
        await output
