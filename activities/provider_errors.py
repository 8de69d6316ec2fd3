"""What a provider's error says about the account: one classification for probes and sends.

``classify`` reads a provider's answer (HTTP status, the provider's own error code) as a
:class:`~models.values.ProviderHealth`:

- ``credentials_rejected``: 401/403, and the providers' own codes for a bad, revoked or
  expired key (Twilio 20003; Resend ``missing_api_key``, ``invalid_api_key``,
  ``restricted_api_key``, and ``validation_error`` "API key is invalid"; Stripe
  ``api_key_expired``, ``platform_api_key_expired``, ``secret_key_required``).
- ``suspended``: the account exists but may not be used (Twilio 10001 and 20005 "Account not
  active", 90010; Stripe ``account_invalid`` and ``testmode_charges_only``; Vapi 402, read as
  "payment required", which Vapi does not document).
- ``down``: no answer (timeouts, refused connections), 5xx, 408 and 429.
- ``business_refusal``: any other 4xx: the provider refused this one request (a bad number,
  an opted-out recipient, a declined card, a Resend 403 ``validation_error`` such as an
  unverified domain); the account is fine.

The send adapters raise ``ProviderUnavailable`` (retried) for the first three and a named,
non-retryable business failure for the last; ``final_attempt`` tells a send when Temporal will
not try again, so it can record the failure on the row.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError

from models.values import ProviderHealth, WebhookProvider

#: The provider's own error codes (as text) for credentials it will not accept.
CREDENTIAL_CODES: dict[WebhookProvider, frozenset[str]] = {
    # https://www.twilio.com/docs/api/errors/20003 (it also answers a closed account so)
    WebhookProvider.TWILIO: frozenset({"20003"}),
    # https://resend.com/docs/api-reference/errors
    WebhookProvider.RESEND: frozenset({"missing_api_key", "invalid_api_key", "restricted_api_key"}),
    # https://docs.stripe.com/error-codes
    WebhookProvider.STRIPE: frozenset(
        {"api_key_expired", "platform_api_key_expired", "secret_key_required"}
    ),
    WebhookProvider.VAPI: frozenset(),
}
#: The provider's own error codes for an account that exists but may not be used.
SUSPENDED_CODES: dict[WebhookProvider, frozenset[str]] = {
    # 10001 and 20005 "Account not active" (no funds, a policy suspension), 90010 likewise.
    WebhookProvider.TWILIO: frozenset({"10001", "20005", "90010"}),
    WebhookProvider.RESEND: frozenset(),
    # account_invalid: the account named can't be used; testmode_charges_only: not activated.
    WebhookProvider.STRIPE: frozenset({"account_invalid", "testmode_charges_only"}),
    WebhookProvider.VAPI: frozenset(),
}
#: Providers whose 402 means the account can't pay (Stripe's 402 is a declined card).
PAYMENT_REQUIRED_SUSPENDS = frozenset({WebhookProvider.VAPI})
#: The classes a send retries (the account or the provider, not the request, is at fault).
RETRIED = frozenset(
    {ProviderHealth.DOWN, ProviderHealth.CREDENTIALS_REJECTED, ProviderHealth.SUSPENDED}
)


def classify(
    provider: WebhookProvider,
    *,
    status_code: int | None,
    error_code: int | str | None = None,
    message: str = "",
) -> ProviderHealth:
    """What a provider's answer says about the account.

    Args:
        provider: Who answered.
        status_code: The HTTP status; ``None`` (or 0) when nothing came back (a timeout, a
            refused connection).
        error_code: The provider's own code: a Twilio number, a Resend error name, a Stripe
            ``code``.
        message: The provider's message (only Resend's ``validation_error`` needs it, to tell
            a bad key from a bad request).

    Returns:
        ``ok`` for a success status, else the class of the failure.
    """
    if not status_code:
        return ProviderHealth.DOWN
    code = "" if error_code is None else str(error_code)
    if code in SUSPENDED_CODES[provider]:
        return ProviderHealth.SUSPENDED
    if code in CREDENTIAL_CODES[provider]:
        return ProviderHealth.CREDENTIALS_REJECTED
    if provider == WebhookProvider.RESEND and code == "validation_error":
        # Resend names a bad key and a bad request alike, at 400, 401 or 403.
        if "api key" in message.lower():
            return ProviderHealth.CREDENTIALS_REJECTED
        return ProviderHealth.BUSINESS_REFUSAL
    if status_code < 400:
        return ProviderHealth.OK
    if status_code in {401, 403}:
        return ProviderHealth.CREDENTIALS_REJECTED
    if status_code == 402 and provider in PAYMENT_REQUIRED_SUSPENDS:
        return ProviderHealth.SUSPENDED
    if status_code in {408, 429} or status_code >= 500:
        return ProviderHealth.DOWN
    return ProviderHealth.BUSINESS_REFUSAL


#: Appended to a retryable failure's text when it is recorded on the row for good.
GAVE_UP = " (no attempt left before the send's deadline)"


def final_attempt(error: ApplicationError, *, info: activity.Info, now: datetime) -> bool:
    """Will Temporal not try again after this retryable failure?

    True when the attempts allowed are used up, or the next attempt (after
    ``next_retry_delay``, else the retry policy's backoff) would start after the activity's
    schedule-to-close deadline. Without a deadline or a known policy, it can't tell: ``False``.
    """
    if error.non_retryable:
        return True
    policy = info.retry_policy
    if policy is not None and policy.maximum_attempts and info.attempt >= policy.maximum_attempts:
        return True
    if info.schedule_to_close_timeout is None:
        return False
    delay = error.next_retry_delay
    if delay is None:
        if policy is None:
            return False
        delay = policy.initial_interval * policy.backoff_coefficient ** (info.attempt - 1)
        cap = policy.maximum_interval or policy.initial_interval * 100
        delay = min(delay, cap)
    deadline = info.scheduled_time + info.schedule_to_close_timeout
    return now + max(delay, timedelta(0)) >= deadline
