"""Provider credential probes: one cheap authenticated read through each official SDK.

Twilio fetches its own account (a ``suspended`` or ``closed`` account is ``suspended``),
Stripe reads the balance, Resend lists domains, Vapi lists phone numbers (its probe lives in
``activities.vapi_calls``, beside the Vapi SDK, which takes seconds to import). Each answer is
read by ``activities.provider_errors.classify``, the same classification the sends use, into a
``ProbeResult``; the ``probe_provider`` activity runs one probe.

A provider without credentials in the deployment is ``not_configured`` and nothing is asked.
Probes follow the credentials, not the provider mode: a dry-run deployment with keys set
probes them too (it still wants to know its keys work before it goes live); one without keys
reports every provider ``not_configured``.

Timeouts are short (``PROBE_TIMEOUT_S``) and the SDKs' own retries are off: a probe is one
sample, and the health check reads a run of them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import requests
import resend
import stripe
from resend.exceptions import ResendError
from temporalio import activity
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from activities.email import resend_status, resend_timeout, use_resend
from activities.provider_errors import classify
from models.values import ProviderHealth, WebhookProvider

#: Seconds a probe's request may take (Twilio and Stripe: per connect and per read).
PROBE_TIMEOUT_S = 5.0
#: What a deployment sets for each provider's credentials (named in ``not_configured``).
CREDENTIAL_SETTINGS: dict[WebhookProvider, str] = {
    WebhookProvider.TWILIO: "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN",
    WebhookProvider.RESEND: "RESEND_API_KEY",
    WebhookProvider.STRIPE: "STRIPE_API_KEY",
    WebhookProvider.VAPI: "VAPI_API_KEY",
}
#: Twilio account statuses that mean the account may not be used.
TWILIO_INACTIVE = frozenset({"suspended", "closed"})


@dataclass(frozen=True, kw_only=True)
class ProbeInput:
    """Probe one provider's credentials."""

    provider: WebhookProvider


@dataclass(frozen=True, kw_only=True)
class ProbeResult:
    """What one probe found.

    Attributes:
        provider: The provider probed.
        outcome: ``ok``, or what the failure says about the account.
        detail: A short explanation for a person: the status and the provider's error code,
            never a secret or a provider's free text.
        status_code: The HTTP status; ``None`` when nothing came back (or nothing was asked).
        latency_ms: How long the request took; 0 when nothing was asked.
    """

    provider: WebhookProvider
    outcome: ProviderHealth
    detail: str = ""
    status_code: int | None = None
    latency_ms: int = 0


class ProviderProbe(Protocol):
    """Checks one provider's credentials with one cheap authenticated request."""

    provider: WebhookProvider

    def probe(self) -> ProbeResult:
        """Ask the provider once; never raise for what the provider (or the network) said."""
        ...


def probe_result(
    provider: WebhookProvider,
    *,
    started: float,
    outcome: ProviderHealth,
    detail: str,
    status_code: int | None,
) -> ProbeResult:
    """A result timed from ``started`` (``time.monotonic()``)."""
    return ProbeResult(
        provider=provider,
        outcome=outcome,
        detail=detail,
        status_code=status_code,
        latency_ms=round((time.monotonic() - started) * 1000),
    )


def probe_failed(
    provider: WebhookProvider,
    *,
    started: float,
    status_code: int | None,
    error_code: int | str | None = None,
    message: str = "",
    error: BaseException | None = None,
) -> ProbeResult:
    """A failed probe, classified: the status and the provider's code, or, when nothing came
    back, the kind of transport failure (``ReadTimeout``, ``ConnectError``)."""
    outcome = classify(provider, status_code=status_code, error_code=error_code, message=message)
    name = provider.value.title()
    if not status_code:
        kind = f" ({type(error).__name__})" if error is not None else ""
        detail = f"{name} did not answer{kind}"
    else:
        code = f", code {error_code}" if error_code not in (None, "") else ""
        detail = f"{name} answered {status_code}{code}"
    return probe_result(
        provider,
        started=started,
        outcome=outcome,
        detail=f"{outcome.value}: {detail}",
        status_code=status_code or None,
    )


def not_configured(provider: WebhookProvider) -> ProbeResult:
    """The result for a provider this deployment has no credentials for (nothing asked)."""
    return ProbeResult(
        provider=provider,
        outcome=ProviderHealth.NOT_CONFIGURED,
        detail=f"no credentials: set {CREDENTIAL_SETTINGS[provider]}",
    )


class TwilioProbe:
    """Checks the Twilio credentials by fetching the account itself (its ``status`` too)."""

    provider = WebhookProvider.TWILIO

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        base_url: str | None = None,
        timeout: float = PROBE_TIMEOUT_S,
    ) -> None:
        """A client for the account; ``base_url`` points the SDK at another host."""
        http = TwilioHttpClient(timeout=timeout, max_retries=None)
        self._client = Client(account_sid, auth_token, http_client=http)
        if base_url:
            self._client.api.base_url = base_url.rstrip("/")
        self._account_sid = account_sid

    def probe(self) -> ProbeResult:
        """``accounts(sid).fetch()``: ``ok`` for an active account, ``suspended`` for a
        suspended or closed one, else what the error says."""
        started = time.monotonic()
        try:
            account = self._client.api.v2010.accounts(self._account_sid).fetch()
        except TwilioRestException as error:
            code = error.code if isinstance(error.code, int) else None
            return probe_failed(
                self.provider, started=started, status_code=error.status, error_code=code
            )
        except requests.RequestException as error:
            return probe_failed(self.provider, started=started, status_code=None, error=error)
        status = str(account.status or "active")
        outcome = ProviderHealth.SUSPENDED if status in TWILIO_INACTIVE else ProviderHealth.OK
        return probe_result(
            self.provider,
            started=started,
            outcome=outcome,
            detail=f"the Twilio account is {status}",
            status_code=200,
        )


class StripeProbe:
    """Checks the Stripe key by reading the account's balance."""

    provider = WebhookProvider.STRIPE

    def __init__(
        self, *, api_key: str, base_url: str | None = None, timeout: float = PROBE_TIMEOUT_S
    ) -> None:
        """A client for the account; ``base_url`` points the SDK at another host."""
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": base_url} if base_url else {},
            max_network_retries=0,
            http_client=stripe.RequestsClient(timeout=timeout),
        )

    def probe(self) -> ProbeResult:
        """``balance.retrieve()``: ``ok`` if Stripe answers, else what its error says.

        A restricted key without "Balance: read" gets a 403 here though it authenticated and
        may hold every permission keepwarm uses: that is ``ok``, with a detail saying so.
        """
        started = time.monotonic()
        try:
            balance = self._client.v1.balance.retrieve()
        except stripe.PermissionError:
            return probe_result(
                self.provider,
                started=started,
                outcome=ProviderHealth.OK,
                detail="Stripe accepted the key (a restricted key without Balance read)",
                status_code=403,
            )
        except stripe.StripeError as error:
            connection = isinstance(error, stripe.APIConnectionError)
            return probe_failed(
                self.provider,
                started=started,
                status_code=None if connection else error.http_status,
                error_code=error.code,
                error=error if connection else None,
            )
        mode = "live" if balance.livemode else "test"
        return probe_result(
            self.provider,
            started=started,
            outcome=ProviderHealth.OK,
            detail=f"Stripe accepted the key ({mode} mode)",
            status_code=200,
        )


class ResendProbe:
    """Checks the Resend key by listing the account's domains."""

    provider = WebhookProvider.RESEND

    def __init__(
        self, *, api_key: str, base_url: str | None = None, timeout: float = PROBE_TIMEOUT_S
    ) -> None:
        """Remember the account (the SDK's settings are module-wide: set before each call)."""
        self._api_key = api_key
        self._api_url = base_url.rstrip("/") if base_url else resend.api_url
        self._timeout = timeout

    def probe(self) -> ProbeResult:
        """``Domains.list()``: ``ok`` if Resend answers, else what its error says.

        A sending-only key is refused here (401 ``restricted_api_key``) though it authenticated
        and can send: that is ``ok``, with a detail saying so.
        """
        use_resend(api_key=self._api_key, api_url=self._api_url)
        started = time.monotonic()
        try:
            with resend_timeout(self._timeout):
                resend.Domains.list()
        except ResendError as error:
            if error.error_type == "restricted_api_key":
                return probe_result(
                    self.provider,
                    started=started,
                    outcome=ProviderHealth.OK,
                    detail="Resend accepted the key (a sending-only key)",
                    status_code=resend_status(error),
                )
            status = resend_status(error)
            return probe_failed(
                self.provider,
                started=started,
                status_code=status,
                error_code=error.error_type if status else None,
                message=str(error.message),
            )
        return probe_result(
            self.provider,
            started=started,
            outcome=ProviderHealth.OK,
            detail="Resend accepted the key (domains listed)",
            status_code=200,
        )


class ProbeActivities:
    """Runs the deployment's provider probes."""

    def __init__(self, *, probes: Mapping[WebhookProvider, ProviderProbe]) -> None:
        """Probe through ``probes``: one per provider the deployment has credentials for."""
        self._probes = probes

    @activity.defn(name="probe_provider")
    def probe_provider(self, input: ProbeInput) -> ProbeResult:
        """Probe one provider's credentials: ``not_configured`` (nothing asked) if the
        deployment has none for it, else the provider's answer, classified.

        Never fails for what the provider said: an outage or a rejected key is a result, which
        the health check reads (a bug still raises).
        """
        probe = self._probes.get(input.provider)
        if probe is None:
            return not_configured(input.provider)
        return probe.probe()
