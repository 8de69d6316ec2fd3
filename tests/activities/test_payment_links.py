"""Payment links against the fake Stripe: a link creation retried after a crash (Stripe made
the link, the worker died before recording it) makes one link, and the stored link is answered
without another call."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from activities.payment_requests import PaymentRequestActivities, PaymentRequestInput
from activities.payments import PaymentLink, StripePayments
from models.database import make_engine, session_scope
from models.services.payment_requests import create_payment_request
from models.tables import PaymentRequest
from models.values import ProviderMode
from tests.fakes.providers import FakeProviders
from tests.models.test_takeover import lead_of


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


class CrashAfterStripe:
    """Stripe's adapter, but the first call dies after Stripe made the link (before the
    worker could record it): what a SIGKILL at that moment leaves."""

    def __init__(self, stripe: StripePayments) -> None:
        self.stripe = stripe
        self.calls = 0

    def create_amount_link(self, **kwargs: Any) -> PaymentLink:
        self.calls += 1
        link = self.stripe.create_amount_link(**kwargs)
        if self.calls == 1:
            raise ConnectionResetError("worker died")
        return link


def test_a_link_creation_retried_after_a_crash_makes_one_link(
    engine: Engine, fake_providers: FakeProviders
) -> None:
    org_id, lead_id, _ = lead_of(engine)
    with session_scope(engine) as session:
        made = create_payment_request(
            session,
            org_id=org_id,
            lead_id=lead_id,
            event_id=uuid.uuid4().hex,
            amount=5_000,
            currency="usd",
            description="Window clean",
            due_at=datetime.now(UTC) + timedelta(days=3),
        )
        row = session.get(PaymentRequest, made.payment_request_id)
        assert row is not None
        row.mode = ProviderMode.LIVE.value
        session.add(row)
    crashing = CrashAfterStripe(
        StripePayments(api_key="sk_test_1", base_url=fake_providers.stripe_base_url)
    )
    activities = PaymentRequestActivities(engine=engine, links={ProviderMode.LIVE: crashing})
    ids = PaymentRequestInput(org_id=org_id, request_id=made.payment_request_id)

    with pytest.raises(ConnectionResetError):
        activities.create_payment_link(ids)
    url = activities.create_payment_link(ids)  # Temporal's retry
    again = activities.create_payment_link(ids)  # a replayed or repeated call: no Stripe call

    posts = [
        request
        for request in fake_providers.requests("stripe")
        if request.method == "POST" and request.path.endswith("/payment_links")
    ]
    assert crashing.calls == 2 and len(posts) == 2
    assert {request.idempotency_key for request in posts} == {
        f"payment-link/{made.payment_request_id}"
    }
    assert url == again and url.startswith("https://buy.stripe.com/")
    with session_scope(engine) as session:
        stored = session.get(PaymentRequest, made.payment_request_id)
        assert stored is not None and stored.url == url
    # The fake (like Stripe) answered the retry with the first link: one link exists.
    made_links = [o for o in fake_providers.objects("stripe") if o["object"] == "payment_link"]
    assert len(made_links) == 1 and made_links[0]["url"] == url
    assert made_links[0]["metadata"] == {
        "lead_id": lead_id,
        "payment_request_id": made.payment_request_id,
    }
