"""The Vapi and Stripe adapters on the real SDKs, against the fake provider server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from temporalio.exceptions import ApplicationError

from activities.errors import InvalidRecipient, ProviderNotConfigured
from activities.payments import StripePayments
from activities.vapi_calls import VapiCalls
from activities.voice import CallRequest
from tests.fakes.providers import FakeProviders


def call(**overrides: object) -> CallRequest:
    values: dict[str, object] = {
        "to": "+447911123456",
        "customer_name": "Ada",
        "assistant_id": "asst_1",
        "phone_number_id": "pn_1",
        "metadata": (("workflow_id", "lead-org_1-abc/calls-1"), ("attempt", "2")),
    }
    values.update(overrides)
    return CallRequest(**values)  # type: ignore[arg-type]


def test_a_call_carries_the_workflow_and_attempt(fake_providers: FakeProviders) -> None:
    vapi = VapiCalls(api_key="vapi-key", base_url=fake_providers.vapi_base_url)

    placed = vapi.place(call())

    [request] = fake_providers.requests("vapi")
    body = request.json
    metadata = {"workflow_id": "lead-org_1-abc/calls-1", "attempt": "2"}
    assert body["assistantId"] == "asst_1"
    assert body["phoneNumberId"] == "pn_1"
    assert body["customer"] == {"number": "+447911123456", "name": "Ada"}
    assert body["metadata"] == metadata
    assert body["assistantOverrides"]["metadata"] == metadata
    assert request.bearer_token == "vapi-key"
    assert placed.call_id == fake_providers.objects("vapi")[0]["id"]


def test_vapi_outages_are_retried_by_temporal_not_the_sdk(fake_providers: FakeProviders) -> None:
    vapi = VapiCalls(api_key="vapi-key", base_url=fake_providers.vapi_base_url)
    fake_providers.fail_next("vapi", status=503)
    fake_providers.fail_next("vapi", status=400)

    with pytest.raises(ApplicationError) as outage:
        vapi.place(call())
    with pytest.raises(InvalidRecipient):
        vapi.place(call())

    assert outage.value.type == "ProviderUnavailable"
    assert not outage.value.non_retryable
    assert len(fake_providers.requests("vapi")) == 2  # one request each: no SDK retries


def test_a_call_needs_the_orgs_assistant_and_number(fake_providers: FakeProviders) -> None:
    vapi = VapiCalls(api_key="vapi-key", base_url=fake_providers.vapi_base_url)

    with pytest.raises(ProviderNotConfigured):
        vapi.place(call(assistant_id=None))

    assert fake_providers.requests("vapi") == []


def test_stripe_objects_are_created_once_per_key(fake_providers: FakeProviders) -> None:
    stripe = StripePayments(api_key="sk_test_1", base_url=fake_providers.stripe_base_url)

    customer = stripe.create_customer(
        email="ada@example.com", name="Ada", lead_id="lead_1", idempotency_key="wf/lead_1/cus"
    )
    again = stripe.create_customer(
        email="ada@example.com", name="Ada", lead_id="lead_1", idempotency_key="wf/lead_1/cus"
    )
    link = stripe.create_payment_link(
        price_id="price_1", quantity=1, lead_id="lead_1", idempotency_key="wf/lead_1/link"
    )
    invoice = stripe.create_invoice(
        customer_id=customer,
        amount=12_050,
        currency="usd",
        description="Deep clean",
        days_until_due=14,
        metadata={"lead_id": "lead_1"},
        idempotency_key="wf/lead_1/inv",
    )
    # A retry after a crash finishes the same invoice: nothing new is made.
    again_invoice = stripe.create_invoice(
        customer_id=customer,
        amount=12_050,
        currency="usd",
        description="Deep clean",
        days_until_due=14,
        metadata={"lead_id": "lead_1"},
        idempotency_key="wf/lead_1/inv",
    )

    assert again == customer
    keys = [request.idempotency_key for request in fake_providers.requests("stripe")]
    invoice_steps = [f"wf/lead_1/inv/{step}" for step in ("invoice", "line", "finalize", "send")]
    assert keys == ["wf/lead_1/cus", "wf/lead_1/cus", "wf/lead_1/link", *invoice_steps * 2]
    assert link.url.startswith("https://")
    assert again_invoice == invoice and invoice.id.startswith("in_")
    assert invoice.url and invoice.url.startswith("https://invoice.stripe.com/")
    stored = fake_providers.get_object("stripe", invoice.id)
    assert stored is not None and stored["status"] == "open"  # finalized and sent, not a draft
    items = [o for o in fake_providers.objects("stripe") if o["object"] == "invoiceitem"]
    assert [(i["invoice"], i["amount"]) for i in items] == [(invoice.id, 12_050)]


def test_stripe_outages_are_retryable_and_bad_requests_final(
    fake_providers: FakeProviders,
) -> None:
    stripe = StripePayments(api_key="sk_test_1", base_url=fake_providers.stripe_base_url)
    fake_providers.fail_next("stripe", status=503)
    fake_providers.fail_next("stripe", status=400)

    with pytest.raises(ApplicationError) as outage:
        stripe.create_customer(email=None, name=None, lead_id="l", idempotency_key="k1")
    with pytest.raises(ApplicationError) as refused:
        stripe.create_customer(email=None, name=None, lead_id="l", idempotency_key="k2")

    assert (outage.value.type, outage.value.non_retryable) == ("ProviderUnavailable", False)
    assert (refused.value.type, refused.value.non_retryable) == ("ProviderRejected", True)
    assert len(fake_providers.requests("stripe")) == 2


@pytest.mark.parametrize("provider", ["vapi", "stripe"])
def test_a_429_waits_as_long_as_retry_after_says(
    fake_providers: FakeProviders, provider: str
) -> None:
    fake_providers.fail_next(provider, status=429, retry_after=7)  # type: ignore[arg-type]

    with pytest.raises(ApplicationError) as limited:
        if provider == "vapi":
            VapiCalls(api_key="vapi-key", base_url=fake_providers.vapi_base_url).place(call())
        else:
            StripePayments(
                api_key="sk_test", base_url=fake_providers.stripe_base_url
            ).create_customer(
                email="ada@example.com", name="Ada", lead_id="lead_1", idempotency_key="k-429"
            )

    assert (limited.value.type, limited.value.non_retryable) == ("ProviderUnavailable", False)
    assert limited.value.next_retry_delay == timedelta(seconds=7)


def test_a_placed_call_is_found_again_by_the_key_in_its_metadata(
    fake_providers: FakeProviders,
) -> None:
    vapi = VapiCalls(api_key="vapi-key", base_url=fake_providers.vapi_base_url)
    keyed = call(metadata=(("workflow_id", "wf-1"), ("call_key", "wf-1/call-1")))
    since = datetime.now(UTC)
    placed = vapi.place(keyed)
    vapi.place(call(metadata=(("call_key", "wf-2/call-1"),)))
    # Vapi may echo the metadata only inside the assistant overrides.
    fake_providers.update_object("vapi", placed.call_id, metadata=None)

    found = vapi.reconcile(keyed, attempted_at=since)
    missing = vapi.reconcile(call(metadata=(("call_key", "wf-3/call-1"),)), attempted_at=since)

    assert found is not None and found.call_id == placed.call_id
    assert missing is None


def test_a_call_whose_report_never_came_is_looked_up(fake_providers: FakeProviders) -> None:
    vapi = VapiCalls(api_key="vapi-key", base_url=fake_providers.vapi_base_url)
    placed = vapi.place(call())

    assert vapi.lookup(placed.call_id) is None  # still queued: nothing to report yet
    # Vapi ends the call; its report is lost on the way (built, never delivered).
    fake_providers.vapi_end_of_call_report(
        "http://127.0.0.1:9/unused",
        call_id=placed.call_id,
        secret="s",
        ended_reason="customer-did-not-answer",
        summary="No answer.",
        duration_seconds=31.0,
        cost=0.02,
    )
    ended = vapi.lookup(placed.call_id)

    assert ended is not None
    assert ended.ended_reason == "customer-did-not-answer"
    assert ended.summary == "No answer."
    assert ended.cost == 0.02
    assert ended.duration_s == pytest.approx(31.0, abs=0.01)
    assert vapi.lookup("no-such-call") is None
