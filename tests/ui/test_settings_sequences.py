"""The owner's sequences and scoring settings in real Chromium: a step's text edited on the
page reaches the next lead; an invalid step is refused beside its field and nothing is saved;
steps are added, moved and removed; a new sequence is started by name; the scoring preview
scores a sample lead with the rules as typed, before they are saved, and saving replaces the
rules; operators get 403; every page passes axe."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import Locator, Page, expect

from tests.api.test_identity import unique_phone
from tests.conftest import eventually
from tests.ui.conftest import NewPage, axe_violations
from tests.ui.test_inbox import Shop, shop, signed_in

SAVED = "Leads already in this sequence get the new version from their next step."


async def sequences(customer: Shop) -> dict[str, dict[str, object]]:
    """The org's sequences as the API lists them, by name."""
    async with httpx.AsyncClient(base_url=customer.base, timeout=10) as api:
        listed = await api.get("/v1/sequences", headers=customer.headers)
    assert listed.status_code == 200, listed.text
    return {item["name"]: item for item in listed.json()["items"]}


async def scoring_rules(customer: Shop) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=customer.base, timeout=10) as api:
        org = await api.get("/v1/orgs/me", headers=customer.headers)
    assert org.status_code == 200, org.text
    rules: dict[str, object] = org.json()["scoring"]
    return rules


async def test_a_step_edited_on_the_page_reaches_the_next_lead(
    new_page: NewPage, live_server: str
) -> None:
    customer = await shop(live_server)
    owner = await signed_in(new_page, customer, "Olivia", role="owner")
    await owner.goto("/app/settings/sequences")
    # A lead with no value, source or message is "browsing": it follows up with nurture.
    routes = owner.get_by_role("table").filter(has_text="Follows up with")
    await expect(routes.get_by_role("row", name=re.compile("^Browsing"))).to_contain_text("nurture")
    assert await axe_violations(owner) == []

    await owner.get_by_role("link", name="Edit nurture").click()
    await expect(owner.get_by_role("heading", level=2)).to_have_text("Sequence “nurture”")
    await expect(owner.locator(".callout")).to_contain_text(
        "Leads already in this sequence get the new version from their next step."
    )
    step = owner.get_by_role("group", name="Step 1", exact=True)
    await step.get_by_label("Step 1 wait", exact=True).fill("1")
    await step.get_by_label("Step 1 wait unit").select_option("seconds")
    await step.get_by_label("Step 1 channel").select_option("sms")
    await step.get_by_label("Step 1 text").fill("Hi {first_name}, {org_name} again: any questions?")
    # The preview fills the placeholders in as the owner types.
    await expect(owner.locator("#preview-0")).to_contain_text("Hi Ada, Shine again: any questions?")
    assert await axe_violations(owner) == []
    await owner.get_by_role("button", name="Save sequence").click()
    await expect(owner.locator(".notice")).to_have_text(
        "Saved: step 1 wait 1 day → 1 second; step 1 channel Email → SMS; step 1 text "
        f"changed. {SAVED}"
    )
    await expect(owner.get_by_label("Step 1 text")).to_have_value(
        "Hi {first_name}, {org_name} again: any questions?"
    )

    async with httpx.AsyncClient(base_url=live_server, timeout=10) as api:
        lead = await api.post(
            "/v1/leads",
            json={"name": "Ada Lovelace", "phone": unique_phone(), "consent": {"sms": True}},
            headers=customer.headers,
        )
        assert lead.status_code == 202, lead.text
        lead_id = lead.json()["lead_id"]

        async def nudged() -> list[str]:
            listed = await api.get(
                "/v1/messages",
                params={"lead_id": lead_id, "direction": "outbound"},
                headers=customer.headers,
            )
            return [
                m["body"]
                for m in listed.json()["items"]
                if m["body"] == "Hi Ada, Shine again: any questions?"
            ]

        assert await eventually(nudged, within=30, every=0.2)


async def test_an_invalid_step_is_refused_beside_its_field_and_nothing_is_saved(
    new_page: NewPage, live_server: str
) -> None:
    customer = await shop(live_server)
    owner = await signed_in(new_page, customer, "Olivia", role="owner")
    await owner.goto("/app/settings/sequences/hot")
    text = owner.get_by_label("Step 2 text")
    default = await text.input_value()
    await text.fill("Hi {nickname}, shall we book?")
    await expect(owner.locator("#preview-1")).to_contain_text("Unknown placeholder {nickname}")

    await owner.get_by_role("button", name="Save sequence").click()

    await expect(owner.locator(".error")).to_have_text(
        "Nothing was saved: fix the fields marked below."
    )
    error = owner.locator("#steps-1-template-error")
    await expect(error).to_contain_text("Unknown placeholder {nickname}")
    await expect(text).to_have_attribute("aria-invalid", "true")
    await expect(text).to_have_value("Hi {nickname}, shall we book?")
    assert await axe_violations(owner) == []
    assert (await sequences(customer))["hot"]["default"] is True
    await owner.goto("/app/settings/sequences/hot")
    await expect(owner.get_by_label("Step 2 text")).to_have_value(default)


async def test_steps_are_added_moved_and_removed_before_saving(
    new_page: NewPage, live_server: str
) -> None:
    customer = await shop(live_server)
    owner = await signed_in(new_page, customer, "Olivia", role="owner")
    await owner.goto("/app/settings/sequences/hot")

    await owner.get_by_role("button", name="Add a step").click()
    new_wait = owner.get_by_label("Step 4 wait", exact=True)
    await expect(new_wait).to_be_focused()
    await expect(owner.get_by_text("Steps changed: not saved yet.")).to_be_visible()
    await new_wait.fill("3")
    await owner.get_by_label("Step 4 text").fill("Hi {first_name}, a last word from {org_name}.")
    await owner.get_by_role("button", name="Move step 4 up").click()
    await expect(owner.get_by_label("Step 3 text")).to_have_value(
        "Hi {first_name}, a last word from {org_name}."
    )
    await expect(owner.get_by_role("button", name="Move step 3 up")).to_be_focused()
    await owner.get_by_role("button", name="Remove step 4").click()
    await expect(owner.get_by_label("Step 4 text")).to_have_count(0)
    await owner.get_by_role("button", name="Save sequence").click()
    await expect(owner.locator(".notice")).to_have_text(
        f"Saved: step 3 wait 2 days → 3 days; step 3 text changed. {SAVED}"
    )

    hot = (await sequences(customer))["hot"]
    assert hot["default"] is False
    steps = hot["steps"]
    assert isinstance(steps, list)
    assert [(s["after"], s["channel"]) for s in steps] == [
        ("PT15M", "sms"),
        ("P1D", "email"),
        ("P3D", "sms"),
    ]
    assert steps[2]["template"] == "Hi {first_name}, a last word from {org_name}."


async def test_a_new_sequence_is_started_by_name_and_saved(
    new_page: NewPage, live_server: str
) -> None:
    customer = await shop(live_server)
    owner = await signed_in(new_page, customer, "Olivia", role="owner")
    await owner.goto("/app/settings/sequences")
    await owner.get_by_label("Name").fill("VIP follow up")
    await owner.get_by_role("button", name="Start").click()
    await expect(owner.locator("#create-error")).to_contain_text("Use lower-case letters")
    await owner.get_by_label("Name").fill("vip")
    await owner.get_by_role("button", name="Start").click()

    await expect(owner).to_have_url(re.compile(r"/app/settings/sequences/vip$"))
    await expect(owner.locator(".seq-status")).to_contain_text("New sequence, not saved yet.")
    await owner.get_by_role("button", name="Save sequence").click()
    summary = owner.locator(".error-summary")
    await expect(summary).to_contain_text("Used for: Choose at least one.")
    await expect(summary).to_contain_text("Step 1 text: Can't be empty.")
    assert "vip" not in await sequences(customer)

    note = "Hi {first_name}, a personal note from {org_name}."
    await owner.get_by_label("High value").check()
    await owner.get_by_label("Step 1 text").fill(note)
    await owner.get_by_role("button", name="Save sequence").click()
    await expect(owner.locator(".notice")).to_have_text(f"Saved: created with 1 step. {SAVED}")
    await expect(owner.locator(".seq-status")).to_contain_text("New leads that are high value")
    assert await axe_violations(owner) == []
    vip = (await sequences(customer))["vip"]
    assert vip["applies_to"] == ["high_value"]
    assert vip["steps"] == [
        {
            "after": "P1D",
            "channel": "email",
            "template": note,
            "variants": None,
            "weights": None,
            "allocation": "weights",
            "fallback": [],
        }
    ]


async def test_a_step_becomes_two_versions_that_are_saved_and_kept(
    new_page: NewPage, live_server: str
) -> None:
    customer = await shop(live_server)
    owner = await signed_in(new_page, customer, "Olivia", role="owner")
    await owner.goto("/app/settings/sequences/hot")
    step = owner.get_by_role("group", name="Step 2", exact=True)
    default = await owner.get_by_label("Step 2 text").input_value()

    await step.get_by_role("button", name="Test another version").click()
    version_b = owner.get_by_label("Step 2 version b text")
    await expect(version_b).to_be_focused()
    await expect(owner.get_by_label("Step 2 version a text")).to_have_value(default)
    await expect(owner.get_by_label("Step 2 text")).to_have_count(0)
    offer = "Hi {first_name}, {org_name} here: 10 % off if you book this week. Reply YES."
    await version_b.fill(offer)
    await expect(owner.locator("#preview-1-1")).to_contain_text("Hi Ada, Shine here: 10 % off")
    await owner.get_by_label("Step 2 version b channel").select_option("sms")
    await expect(owner.locator("#preview-1-1")).to_contain_text("SMS ·")

    # A third version left empty is refused beside its field, and nothing is saved.
    await step.get_by_role("button", name="Test another version").click()
    await expect(owner.get_by_label("Step 2 version c text")).to_be_focused()
    await owner.get_by_role("button", name="Save sequence").click()
    await expect(owner.locator("#steps-1-variants-2-template-error")).to_have_text(
        "Can't be empty."
    )
    await expect(owner.locator(".error-summary")).to_contain_text(
        "Step 2 version c text: Can't be empty."
    )
    assert (await sequences(customer))["hot"]["default"] is True
    await owner.get_by_role("button", name="Remove version c").click()
    await expect(owner.get_by_label("Step 2 version c text")).to_have_count(0)
    await expect(version_b).to_have_value(offer)

    await owner.get_by_label("Shift leads toward the better version").check()
    assert await axe_violations(owner) == []
    await owner.get_by_role("button", name="Save sequence").click()
    await expect(owner.locator(".notice")).to_have_text(
        f"Saved: step 2 variants now a, b (thompson). {SAVED}"
    )
    second = (await sequences(customer))["hot"]["steps"]
    assert isinstance(second, list)
    tested = second[1]
    assert tested["template"] is None
    assert tested["variants"] == [
        {"name": "a", "template": default, "channel": None},
        {"name": "b", "template": offer, "channel": "sms"},
    ]
    assert (tested["weights"], tested["allocation"]) == (None, "thompson")

    # Reopened, the page shows them; the results list both versions, no winner yet.
    await owner.goto("/app/settings/sequences/hot")
    await expect(owner.get_by_label("Step 2 version a text")).to_have_value(default)
    await expect(owner.get_by_label("Step 2 version b text")).to_have_value(offer)
    await expect(owner.get_by_label("Step 2 version b channel")).to_have_value("sms")
    await expect(owner.get_by_label("Shift leads toward the better version")).to_be_checked()
    await expect(owner.locator("#result-2-verdict")).to_contain_text("Not enough data yet")

    # A fallback list longer than the page's one choice, saved through the API ...
    body = {key: value for key, value in (await sequences(customer))["hot"].items()}
    del body["name"], body["default"]
    assert isinstance(body["steps"], list)
    body["steps"][2]["fallback"] = ["whatsapp", "email"]
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as api:
        put = await api.put("/v1/sequences/hot", json=body, headers=customer.headers)
    assert put.status_code == 200, put.text
    await owner.goto("/app/settings/sequences/hot")
    step_3 = owner.get_by_role("group", name="Step 3", exact=True)
    await expect(step_3.get_by_label("If they can't be reached this way")).to_have_value("whatsapp")
    await expect(step_3).to_contain_text("then Email")

    # ... and the versions are kept when something else is changed and saved.
    step_1 = owner.get_by_role("group", name="Step 1", exact=True)
    await step_1.get_by_label("Step 1 text").fill("Hi {first_name}, {org_name} here: book now?")
    await step_1.get_by_label("If they can't be reached this way").select_option("email")
    await owner.get_by_role("button", name="Save sequence").click()
    await expect(owner.locator(".notice")).to_have_text(
        f"Saved: step 1 text changed; step 1 fallback Email. {SAVED}"
    )
    steps = (await sequences(customer))["hot"]["steps"]
    assert isinstance(steps, list)
    assert steps[1] == tested
    assert [s["fallback"] for s in steps] == [["email"], [], ["whatsapp", "email"]]

    # The step's channel is each version's unless it has its own: the previews follow it.
    await owner.get_by_label("Step 2 channel").select_option("whatsapp")
    await expect(owner.locator("#preview-1-0")).to_contain_text("WhatsApp ·")
    await expect(owner.locator("#preview-1-1")).to_contain_text("SMS ·")

    # One version left: the step is a plain text again (not saved until Save).
    await owner.get_by_role("button", name="Remove version b").click()
    await expect(owner.get_by_label("Step 2 text")).to_have_value(default)
    await expect(owner.get_by_label("Step 2 text")).to_be_focused()
    await expect(owner.get_by_label("Shift leads toward the better version")).to_have_count(0)


async def rule_row(owner: Page, kind: str, name: str) -> tuple[Locator, Locator]:
    """The name and points fields of the ``kind`` row (``words``, ``sources``) named ``name``."""
    label = "phrase" if kind == "words" else "name"
    for box in await owner.locator(f"input[name^='{kind}-'][name$='-{label}']").all():
        if await box.input_value() == name:
            attribute = await box.get_attribute("name")
            assert attribute is not None
            row = attribute.rsplit("-", 1)[0]
            return box, owner.locator(f"input[name='{row}-points']")
    raise AssertionError(f"no {kind} row for {name!r}")


async def test_the_scoring_preview_uses_the_rules_as_typed_before_saving(
    new_page: NewPage, live_server: str
) -> None:
    customer = await shop(live_server)
    owner = await signed_in(new_page, customer, "Olivia", role="owner")
    await owner.goto("/app/settings/scoring")
    assert await axe_violations(owner) == []

    await owner.get_by_label("Source", exact=True).fill("website_form")
    await owner.get_by_label("Message", exact=True).fill("Could I get a quote please?")
    await owner.get_by_label("Value", exact=True).fill("300")
    score = owner.locator("#preview-score")
    await expect(score).to_have_text("55")  # 10 + 25 (value) + 10 (source) + 10 ("quote")
    await expect(owner.locator("#preview-intent")).to_have_text("Engaged")
    await expect(owner.locator("#preview-reasons li")).to_have_text(
        ["base +10", "value 300 ≥ 250 +25", "source website_form +10", "mentions 'quote' +10"]
    )

    _, quote = await rule_row(owner, "words", "quote")
    await quote.fill("30")
    await expect(score).to_have_text("75")
    await expect(owner.locator("#preview-intent")).to_have_text("High value")
    await expect(owner.locator("#preview-reasons")).to_contain_text("mentions 'quote' +30")
    await owner.get_by_label("Has bought before").check()
    await expect(score).to_have_text("90")
    await expect(owner.locator("#preview-reasons")).to_contain_text("returning customer +15")
    assert await axe_violations(owner) == []
    words = await scoring_rules(customer)
    assert isinstance(words["words"], dict) and words["words"]["quote"] == 10  # not saved yet

    # Thresholds that don't fall: the preview says why, saving refuses beside the field.
    await owner.get_by_label("Engaged from").fill("80")
    await expect(owner.locator("#scoring-preview")).to_contain_text(
        "Intent: High value must be above engaged, and engaged above window shopper."
    )
    await owner.get_by_role("button", name="Save scoring rules").click()
    await expect(owner.locator(".error")).to_have_text(
        "Nothing was saved: fix the fields marked below."
    )
    await expect(owner.locator("#thresholds-error")).to_contain_text(
        "High value must be above engaged"
    )

    await owner.get_by_label("Engaged from").fill("45")
    # A word deleted from the form is gone from the rules (they are replaced, not merged).
    for field in await rule_row(owner, "words", "asap"):
        await field.fill("")
    await owner.get_by_role("button", name="Save scoring rules").click()
    notice = owner.locator(".notice")
    await expect(notice).to_contain_text(re.compile(r"^Saved: .*“quote”: \+10 → \+30"))
    await expect(notice).to_contain_text(re.compile(r"“asap”: removed"))
    saved = await scoring_rules(customer)
    assert isinstance(saved["words"], dict) and saved["words"]["quote"] == 30
    assert "asap" not in saved["words"]


async def test_operators_get_403_on_every_settings_page(
    new_page: NewPage, live_server: str
) -> None:
    customer = await shop(live_server)
    operator = await signed_in(new_page, customer, "Oscar")
    for path in (
        "/app/settings/sequences",
        "/app/settings/sequences/hot",
        "/app/settings/scoring",
    ):
        response = await operator.goto(path)
        assert response is not None and response.status == 403, path
        await expect(operator.get_by_role("heading", name="Not allowed")).to_be_visible()
    refused = await operator.request.post(
        f"{live_server}/app/settings/scoring/preview",
        headers={"HX-Request": "true", "Origin": live_server},
        form={"base": "10"},
    )
    assert refused.status == 403
