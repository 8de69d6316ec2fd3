"""Take the README's screenshots of the operators' pages from a running `keepwarm up`.

Start the stack with a Twilio auth token (so the demo's inbound texts are signed webhooks the
API accepts), then run this with the demo's API key and the owner's setup link it printed::

    TWILIO_AUTH_TOKEN=demo-token KEEPWARM_DATA_DIR=/tmp/kw .venv/bin/keepwarm up
    PYTHONPATH=. .venv/bin/python docs/screenshots.py --key "$(cat /tmp/kw/demo_api_key)" \\
        --setup-link http://127.0.0.1:8000/app/invite/... --twilio-token demo-token

It drives Debian's Chromium (``/usr/bin/chromium``) with Playwright and writes PNGs to
``docs/img/``.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import httpx
from playwright.async_api import Page, async_playwright, expect

from tests.fakes.providers import twilio_signature_headers

OUT = Path(__file__).with_name("img")
PASSWORD = "demo password 123"  # noqa: S105  (a demo account on a local stack)
CUSTOMERS = [
    ("Ada Lovelace", "+447911123401", "Need a deep clean before Friday, 3 bed flat", 320.0),
    ("Grace Hopper", "+447911123402", "End of tenancy clean, can you do weekends?", 450.0),
    ("Alan Turing", "+447911123403", "Oven clean quote please", 80.0),
    ("Katherine Johnson", "+447911123404", "Weekly clean for an office", 1200.0),
]
REPLIES = {
    "Ada Lovelace": "Is Thursday morning possible? I work from home after 2pm.",
    "Grace Hopper": "The last cleaner broke a vase and nobody called back. Not happy.",
    "Katherine Johnson": "Can someone call me about a contract?",
}


async def _sign_in(page: Page, link: str) -> None:
    await page.goto(link)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_label("Password again").fill(PASSWORD)
    await page.get_by_role("button", name="Set password and sign in").click()
    await expect(page.locator("#live-status")).to_have_text("Live", timeout=10_000)


async def _experiment(owner: Page, base: str, headers: dict[str, str]) -> None:
    """An A/B test on a quick sequence for browsers; a few leads run its first step; the
    sequence's page with its results (too few sends for a verdict, as it says)."""
    async with httpx.AsyncClient(base_url=base, timeout=20) as api:
        put = await api.put(
            "/v1/sequences/quote-test",
            json={
                "applies_to": ["browsing"],
                "max_attempts": 1,
                "steps": [
                    {
                        "after": "PT5S",
                        "channel": "email",
                        "variants": [
                            {"name": "a", "template": "Hi {first_name}, any questions? Reply."},
                            {
                                "name": "b",
                                "template": "{first_name}, 10 % off a first clean this week.",
                            },
                        ],
                    }
                ],
            },
            headers=headers,
        )
        put.raise_for_status()
        for n in range(6):
            await api.post(
                "/v1/leads",
                json={"name": f"Visitor {n + 1}", "email": f"visitor{n + 1}@example.com"},
                headers=headers,
            )
        for _ in range(60):
            results = (await api.get("/v1/sequences/quote-test/results", headers=headers)).json()
            if sum(v["sent"] for v in results["steps"][0]["variants"]) >= 6:
                break
            await asyncio.sleep(0.5)
    await owner.goto(f"{base}/app/settings/sequences/quote-test")
    await expect(owner.locator("#results")).to_be_visible()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--key", required=True)
    parser.add_argument("--setup-link", required=True)
    parser.add_argument("--twilio-token", required=True)
    args = parser.parse_args()
    headers = {"Authorization": f"Bearer {args.key}"}
    OUT.mkdir(exist_ok=True)
    async with httpx.AsyncClient(base_url=args.base, timeout=20) as api:
        org_id = (await api.get("/v1/orgs/me", headers=headers)).json()["id"]
        any_hour = {"sms": None, "whatsapp": None, "voice": None, "email": None}
        await api.patch("/v1/orgs/me", json={"quiet_hours": any_hour}, headers=headers)
        mia = await api.post(
            "/v1/operators",
            json={
                "name": "Mia Chen",
                "email": f"mia-{uuid.uuid4().hex[:4]}@demo.example",
                "role": "operator",
            },
            headers=headers,
        )
        threads: dict[str, str] = {}
        for name, phone, message, value in CUSTOMERS:
            lead = await api.post(
                "/v1/leads",
                json={
                    "name": name,
                    "phone": phone,
                    "message": message,
                    "value": value,
                    "source": "website_form",
                    "consent": {"sms": True},
                },
                headers=headers,
            )
            lead_id = lead.json()["lead_id"]
            for _ in range(100):
                found = (
                    await api.get("/v1/messages", params={"lead_id": lead_id}, headers=headers)
                ).json()["items"]
                if found and found[0]["thread_id"]:
                    threads[name] = found[0]["thread_id"]
                    break
                await asyncio.sleep(0.2)
        for name, body in REPLIES.items():
            phone = next(p for n, p, _, _ in CUSTOMERS if n == name)
            path = f"/v1/webhooks/twilio/{org_id}"
            sid = "SM" + uuid.uuid4().hex
            form = {
                "MessageSid": sid,
                "SmsSid": sid,
                "AccountSid": "AC" + "0" * 32,
                "From": phone,
                "To": "+447700900000",
                "Body": body,
                "NumMedia": "0",
                "SmsStatus": "received",
                "ApiVersion": "2010-04-01",
            }
            await api.post(
                path,
                content=urlencode(form),
                headers=twilio_signature_headers(args.base + path, form, args.twilio_token),
            )
        # A visit for Ada with Sam, booked three days out and moved a day later.
        sam = await api.post("/v1/providers", json={"name": "Sam Okafor"}, headers=headers)
        ada = threads["Ada Lovelace"]
        ada_lead = (
            await api.get("/v1/messages", params={"thread_id": ada}, headers=headers)
        ).json()["items"][0]["lead_id"]
        start = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
        visit = await api.post(
            f"/v1/leads/{ada_lead}/bookings",
            json={
                "event_id": f"demo-{uuid.uuid4().hex[:6]}",
                "starts_at": (start + timedelta(days=3)).isoformat(),
                "provider_id": sam.json()["id"],
                "service": "deep clean",
                "address": "12 Analytical Row",
            },
            headers=headers,
        )
        booking_id = visit.json()["booking_id"]
        await asyncio.sleep(2)
        await api.patch(
            f"/v1/bookings/{booking_id}",
            json={"starts_at": (start + timedelta(days=4)).isoformat()},
            headers=headers,
        )
        await asyncio.sleep(3)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox"]
        )
        viewport = {"width": 1400, "height": 860}
        owner = await (await browser.new_context(viewport=viewport)).new_page()  # type: ignore[arg-type]
        await _sign_in(owner, args.setup_link)
        other = await (await browser.new_context(viewport=viewport)).new_page()  # type: ignore[arg-type]
        await _sign_in(other, args.base + urlsplit(mia.json()["invite_url"]).path)

        await owner.goto(f"{args.base}/app/inbox?thread={threads['Ada Lovelace']}")
        await owner.get_by_role("button", name="Take over").click()
        await owner.get_by_label("Reply by SMS").fill("Hi Ada, Thursday 9am works. See you then!")
        await owner.get_by_role("button", name="Send").click()
        await expect(owner.locator("#pane-flash .notice")).to_be_visible()
        await owner.wait_for_timeout(1500)
        await owner.screenshot(path=OUT / "inbox.png")

        await other.goto(f"{args.base}/app/inbox?thread={threads['Ada Lovelace']}")
        await expect(other.locator("#holder")).to_contain_text("Held by")
        await other.screenshot(path=OUT / "thread-held.png")

        async with httpx.AsyncClient(base_url=args.base, timeout=20) as api:
            await api.post(
                f"/v1/threads/{threads['Alan Turing']}/escalate",
                json={
                    "reason": "needs_person",
                    "priority": "medium",
                    "summary": "Asked for a quote by phone",
                },
                headers=headers,
            )
        await owner.goto(f"{args.base}/app/attention")
        await owner.wait_for_timeout(1000)
        await owner.screenshot(path=OUT / "attention.png")
        await owner.goto(f"{args.base}/app")
        await owner.wait_for_timeout(500)
        await owner.screenshot(path=OUT / "command-center.png")
        await owner.goto(f"{args.base}/app/alerts")
        await expect(owner.get_by_role("heading", name="Alerts", exact=True)).to_be_visible()
        await owner.screenshot(path=OUT / "alerts.png", full_page=True)
        await owner.goto(f"{args.base}/app/pipeline")
        await expect(owner.get_by_role("heading", name="Pipeline", exact=True)).to_be_visible()
        await owner.wait_for_timeout(1000)  # the charts draw
        await owner.screenshot(path=OUT / "pipeline.png", full_page=True)
        await owner.goto(f"{args.base}/app/settings/provider-mode")
        await expect(owner.get_by_role("heading", name="Provider mode")).to_be_visible()
        await owner.screenshot(path=OUT / "settings-provider-mode.png")
        await owner.goto(f"{args.base}/app/settings/sequences/hot")
        await owner.wait_for_timeout(500)
        await owner.screenshot(path=OUT / "settings-sequence.png", full_page=True)
        await owner.goto(f"{args.base}/app/failed")
        await expect(owner.get_by_role("heading", name="Failed", exact=True)).to_be_visible()
        await owner.screenshot(path=OUT / "failed.png")
        await owner.goto(f"{args.base}/app/inbox?thread={threads['Grace Hopper']}")
        await owner.get_by_role("link", name=re.compile(r"^Lead: ")).click()
        await expect(owner.locator(".live-status")).to_be_visible()
        await owner.screenshot(path=OUT / "lead.png", full_page=True)
        await owner.go_back()
        await owner.get_by_role("link", name="Customer").click()
        await owner.wait_for_timeout(500)
        await owner.screenshot(path=OUT / "customer.png", full_page=True)
        await owner.goto(f"{args.base}/app/bookings/{booking_id}")
        await expect(owner.get_by_text("The customer was told of the new time")).to_be_visible()
        await owner.screenshot(path=OUT / "booking.png", full_page=True)
        await owner.goto(f"{args.base}/app/providers")
        await owner.screenshot(path=OUT / "providers.png")
        await _experiment(owner, args.base, headers)
        await owner.locator("#results").screenshot(path=OUT / "sequence-results.png")
        await browser.close()
    print(f"screenshots in {OUT}")


if __name__ == "__main__":
    asyncio.run(main())
