"""Payments through Stripe's SDK (``StripeClient``): customers, payment links, invoices.

Every create carries an idempotency key, so a retried activity gets Stripe's first answer
back instead of a second object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import stripe
from temporalio.exceptions import ApplicationError

from activities.errors import ProviderRejected, labelled, provider_unavailable
from activities.provider_errors import RETRIED, classify
from models.values import ProviderHealth, WebhookProvider

#: Stripe's own retries are off: Temporal owns retries, with backoff and a cap.
NETWORK_RETRIES = 0


@dataclass(frozen=True, kw_only=True)
class PaymentLink:
    """A hosted page where the customer pays."""

    id: str
    url: str


@dataclass(frozen=True, kw_only=True)
class SentInvoice:
    """An invoice Stripe finalized and sent: its id and the page where it is paid."""

    id: str
    url: str | None


class PaymentLinks(Protocol):
    """Creates a payment link for an amount (Stripe's, or a simulated one in dry run)."""

    def create_amount_link(
        self,
        *,
        amount: int,
        currency: str,
        description: str,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> PaymentLink:
        """A link where the customer pays ``amount`` (minor units) of ``currency``."""
        ...


class DryRunPaymentLinks:
    """Dry run: no Stripe call; a link that says it is simulated (``.invalid``: never a
    real page)."""

    def create_amount_link(
        self,
        *,
        amount: int,
        currency: str,
        description: str,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> PaymentLink:
        """A simulated link named after the request."""
        request = metadata.get("payment_request_id", "request")
        return PaymentLink(
            id=f"plink_dry_run_{request}", url=f"https://pay.dry-run.invalid/{request}"
        )


class StripePayments:
    """Creates Stripe objects for one account."""

    def __init__(self, *, api_key: str, base_url: str | None = None) -> None:
        """A client for the account; ``base_url`` points the SDK at another host."""
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": base_url} if base_url else {},
            max_network_retries=NETWORK_RETRIES,
        )

    def create_customer(
        self, *, email: str | None, name: str | None, lead_id: str, idempotency_key: str
    ) -> str:
        """A customer for the lead's contact; its id."""
        params: stripe.params.CustomerCreateParams = {"metadata": {"lead_id": lead_id}}
        if email:
            params["email"] = email
        if name:
            params["name"] = name
        try:
            customer = self._client.v1.customers.create(
                params, {"idempotency_key": idempotency_key}
            )
        except stripe.StripeError as error:
            raise classify_stripe(error) from None
        return customer.id

    def create_payment_link(
        self, *, price_id: str, quantity: int, lead_id: str, idempotency_key: str
    ) -> PaymentLink:
        """A payment link for ``quantity`` of ``price_id``, tagged with the lead."""
        try:
            link = self._client.v1.payment_links.create(
                {
                    "line_items": [{"price": price_id, "quantity": quantity}],
                    "metadata": {"lead_id": lead_id},
                },
                {"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as error:
            raise classify_stripe(error) from None
        return PaymentLink(id=link.id, url=link.url)

    def create_amount_link(
        self,
        *,
        amount: int,
        currency: str,
        description: str,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> PaymentLink:
        """A payment link for one ``amount`` (minor units) of ``currency`` named
        ``description``; ``metadata`` (the lead and the request) is copied by Stripe onto
        the Checkout Sessions the link makes, so their events find the request."""
        try:
            link = self._client.v1.payment_links.create(
                {
                    "line_items": [
                        {
                            "price_data": {
                                "currency": currency,
                                "unit_amount": amount,
                                "product_data": {"name": description},
                            },
                            "quantity": 1,
                        }
                    ],
                    "metadata": metadata,
                },
                {"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as error:
            raise classify_stripe(error) from None
        return PaymentLink(id=link.id, url=link.url)

    def create_invoice(
        self,
        *,
        customer_id: str,
        amount: int,
        currency: str,
        description: str,
        days_until_due: int,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> SentInvoice:
        """An invoice for one line (``amount`` in minor units of ``currency``), finalized and
        sent by Stripe to the customer, due in ``days_until_due`` days. Each of its four
        calls carries its own key derived from ``idempotency_key``, so a retry after a crash
        at any point finishes the same invoice instead of making another."""
        try:
            invoice = self._client.v1.invoices.create(
                {
                    "customer": customer_id,
                    "collection_method": "send_invoice",
                    "days_until_due": days_until_due,
                    "currency": currency,
                    "pending_invoice_items_behavior": "exclude",
                    "metadata": metadata,
                },
                {"idempotency_key": f"{idempotency_key}/invoice"},
            )
            assert invoice.id is not None
            self._client.v1.invoice_items.create(
                {
                    "customer": customer_id,
                    "invoice": invoice.id,
                    "amount": amount,
                    "currency": currency,
                    "description": description,
                    "metadata": metadata,
                },
                {"idempotency_key": f"{idempotency_key}/line"},
            )
            finalized = self._client.v1.invoices.finalize_invoice(
                invoice.id, {}, {"idempotency_key": f"{idempotency_key}/finalize"}
            )
            self._client.v1.invoices.send_invoice(
                invoice.id, {}, {"idempotency_key": f"{idempotency_key}/send"}
            )
        except stripe.StripeError as error:
            raise classify_stripe(error) from None
        return SentInvoice(id=invoice.id, url=finalized.hosted_invoice_url)


def classify_stripe(error: stripe.StripeError) -> ApplicationError:
    """A Stripe failure as a named error: declines and bad requests final; outages, rejected
    credentials and a suspended account retried (``activities.provider_errors.classify``)."""
    refusal = ProviderHealth.BUSINESS_REFUSAL
    if isinstance(error, stripe.CardError):
        return ApplicationError(
            labelled(refusal, f"card declined: {error.code or 'declined'}"),
            refusal.value,
            WebhookProvider.STRIPE.value,
            type="CardDeclined",
            non_retryable=True,
        )
    status = None if isinstance(error, stripe.APIConnectionError) else error.http_status
    health = classify(WebhookProvider.STRIPE, status_code=status, error_code=error.code)
    if health == refusal and isinstance(error, stripe.APIError | stripe.RateLimitError):
        health = ProviderHealth.DOWN  # Stripe's own word: the failure is on its side
    if health in RETRIED:
        return provider_unavailable(
            WebhookProvider.STRIPE, status, error.headers, code=error.code, health=health
        )
    return ProviderRejected(
        labelled(
            refusal, f"Stripe refused the request ({status} {error.code or type(error).__name__})"
        ),
        provider=WebhookProvider.STRIPE,
    )
