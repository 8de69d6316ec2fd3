"""SMS and WhatsApp through Twilio's SDK (``messages.create``), behind the ``Sender`` Protocol."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

import requests
from temporalio.exceptions import ApplicationError
from twilio.base import values
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from activities.errors import (
    InvalidRecipient,
    OptedOut,
    ProviderNotConfigured,
    ProviderRejected,
    labelled,
    provider_unavailable,
)
from activities.provider_errors import classify
from activities.senders import Outbound, ProviderReceipt
from models.values import MessageStatus, ProviderHealth, WebhookProvider

#: Twilio error codes that no retry will fix (https://www.twilio.com/docs/api/errors).
INVALID_RECIPIENT_CODES = frozenset({21211, 21214, 21217, 21612, 21614, 63003})
OPTED_OUT_CODES = frozenset({21610})
#: Seconds per connect and per read: together inside the activity's 30 s start-to-close.
REQUEST_TIMEOUT_S = 10.0
#: Twilio's 429 carries no usable Retry-After through the SDK: wait this long.
TWILIO_RATE_LIMIT_WAIT = timedelta(seconds=5)
#: Reconciliation looks at this many recent messages to the recipient...
RECONCILE_LOOKBACK = 20
#: ...created no earlier than this before the crashed attempt began (clock skew).
RECONCILE_SLACK = timedelta(minutes=2)

# The SDK logs whole requests at INFO, numbers and bodies included.
logging.getLogger("twilio.http_client").setLevel(logging.WARNING)


class TwilioSms:
    """Sends SMS, or WhatsApp with ``whatsapp=True``, through one Twilio account."""

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        base_url: str | None = None,
        whatsapp: bool = False,
    ) -> None:
        """A client for the account; ``base_url`` points the SDK at another host."""
        # No SDK retries: Temporal owns retries, with backoff and a cap.
        http = TwilioHttpClient(timeout=REQUEST_TIMEOUT_S, max_retries=None)
        self._client = Client(account_sid, auth_token, http_client=http)
        if base_url:
            self._client.api.base_url = base_url.rstrip("/")
        self._whatsapp = whatsapp

    def send(self, message: Outbound) -> ProviderReceipt:
        """``messages.create`` with the status callback that carries the idempotency key.

        A message with ``content_sid`` goes out as that Content API template with its
        ``content_variables`` and no body (WhatsApp outside the 24-hour session).
        """
        if not message.sender:
            raise ProviderNotConfigured(
                "no sender: set sms_from (or whatsapp_from) with PATCH /v1/orgs/me"
            )
        prefix = "whatsapp:" if self._whatsapp else ""
        try:
            created = self._client.messages.create(
                to=prefix + message.to,
                from_=prefix + message.sender,
                # A template carries no body: Twilio renders the approved text.
                body=values.unset if message.content_sid else message.body,
                content_sid=message.content_sid or values.unset,
                content_variables=message.content_variables or values.unset,
                status_callback=message.status_callback,
            )
        except TwilioRestException as error:
            raise classify_twilio(error) from None
        except requests.RequestException:
            # No answer (a timeout may hide a message Twilio took: the retry reconciles).
            raise provider_unavailable(WebhookProvider.TWILIO, None) from None
        return ProviderReceipt(status=MessageStatus.QUEUED, provider_message_id=created.sid)

    def reconcile(self, message: Outbound, *, attempted_at: datetime) -> ProviderReceipt | None:
        """Look for the message an earlier attempt may have sent (Twilio takes no idempotency
        key): same recipient, sender and body, created since that attempt began.

        A template's body is Twilio's rendering, which keepwarm doesn't know, and the message
        resource doesn't name its template: the match is the message to the recipient from the
        sender created nearest the time the attempt began (the send then checks that no other
        message of ours holds it).
        """
        if not message.sender:
            return None
        prefix = "whatsapp:" if self._whatsapp else ""
        since = attempted_at - RECONCILE_SLACK
        try:
            recent = self._client.messages.list(
                to=prefix + message.to, from_=prefix + message.sender, limit=RECONCILE_LOOKBACK
            )
        except TwilioRestException as error:
            raise classify_twilio(error) from None
        except TwilioException as error:
            # A list's page raises the bare exception, with the response as its argument.
            raise classify_twilio(_page_error(error)) from None
        except requests.RequestException:
            raise provider_unavailable(WebhookProvider.TWILIO, None) from None
        if message.content_sid:
            timed = [
                (abs(found.date_created - attempted_at), found.sid)
                for found in recent
                if found.date_created is not None and found.date_created >= since
            ]
            if not timed:
                return None
            _, sid = min(timed)
            return ProviderReceipt(status=MessageStatus.QUEUED, provider_message_id=sid)
        for found in recent:
            created = found.date_created
            if found.body == message.body and (created is None or created >= since):
                return ProviderReceipt(status=MessageStatus.QUEUED, provider_message_id=found.sid)
        return None


def _page_error(error: TwilioException) -> TwilioRestException:
    """The REST error a failed page of a list stands for (its status and Twilio's code)."""
    response = next((arg for arg in error.args if isinstance(arg, Response)), None)
    if response is None:
        return TwilioRestException(0, "", str(error))
    try:
        body = json.loads(response.text)
    except ValueError:
        body = {}
    code = body.get("code") if isinstance(body, dict) else None
    return TwilioRestException(
        response.status_code, "", "", code=code if isinstance(code, int) else None
    )


def classify_twilio(error: TwilioRestException) -> ApplicationError:
    """A Twilio failure as a named error: business refusals final; an outage, rejected
    credentials and a suspended account retried (``activities.provider_errors.classify``)."""
    code = error.code if isinstance(error.code, int) else None
    refusal = ProviderHealth.BUSINESS_REFUSAL
    if code in OPTED_OUT_CODES:
        return OptedOut(
            labelled(
                refusal, f"Twilio {code}: the recipient has opted out of messages from this sender"
            )
        )
    if code in INVALID_RECIPIENT_CODES:
        return InvalidRecipient(
            labelled(refusal, f"Twilio {code}: the number can't receive this message")
        )
    status = error.status
    health = classify(WebhookProvider.TWILIO, status_code=status, error_code=code)
    if health == refusal:
        return ProviderRejected(
            labelled(refusal, f"Twilio refused the message ({status}, code {code})"),
            provider=WebhookProvider.TWILIO,
        )
    # The SDK's exception carries no headers, so a 429 waits a fixed while.
    wait = TWILIO_RATE_LIMIT_WAIT if status == 429 else None
    return provider_unavailable(
        WebhookProvider.TWILIO, status, code=code, health=health, default_delay=wait
    )
