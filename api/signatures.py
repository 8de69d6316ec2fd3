"""Webhook signature checks, one per provider, on the providers' own SDK helpers where they
have one. Each raises ``BadSignature`` with a reason safe to log (never a secret)."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any

import resend
import stripe
from twilio.request_validator import RequestValidator

#: Signed webhooks older (or newer) than this are refused as replays.
TOLERANCE_S = 300


class BadSignature(Exception):
    """The webhook is not provably from the provider."""


def verify_twilio(
    *, auth_token: str | None, url: str, params: Mapping[str, str], signature: str | None
) -> None:
    """``X-Twilio-Signature``: HMAC-SHA1 of the full public URL and the sorted form fields."""
    if not auth_token:
        raise BadSignature("TWILIO_AUTH_TOKEN is not set, so Twilio webhooks can't be verified")
    if not signature:
        raise BadSignature("missing X-Twilio-Signature")
    if not RequestValidator(auth_token).validate(url, dict(params), signature):
        raise BadSignature("X-Twilio-Signature does not match")


def verify_resend(*, secret: str | None, body: bytes, headers: Mapping[str, str]) -> Any:
    """Svix headers (``svix-id``, ``svix-timestamp``, ``svix-signature``), via Resend's SDK.

    Returns the parsed event.
    """
    if not secret:
        raise BadSignature("RESEND_WEBHOOK_SECRET is not set, so Resend webhooks can't be verified")
    try:
        text = body.decode()
        return resend.Webhooks.verify(
            {
                "payload": text,
                "headers": {
                    "id": headers.get("svix-id", ""),
                    "timestamp": headers.get("svix-timestamp", ""),
                    "signature": headers.get("svix-signature", ""),
                },
                "webhook_secret": secret,
            }
        )
    except (UnicodeDecodeError, ValueError) as error:
        raise BadSignature(f"Svix signature check failed: {_short(error)}") from None


def verify_stripe(*, secret: str | None, body: bytes, signature: str | None) -> stripe.Event:
    """``Stripe-Signature``, via the SDK's ``construct_event`` (5-minute tolerance)."""
    if not secret:
        raise BadSignature("STRIPE_WEBHOOK_SECRET is not set, so Stripe webhooks can't be verified")
    if not signature:
        raise BadSignature("missing Stripe-Signature")
    try:
        event: stripe.Event = stripe.Webhook.construct_event(
            body, signature, secret, tolerance=TOLERANCE_S
        )
    except stripe.SignatureVerificationError as error:
        raise BadSignature(f"Stripe-Signature check failed: {_short(error)}") from None
    except (ValueError, AttributeError, TypeError):
        # Not JSON (ValueError), or JSON but not an object (the SDK's AttributeError).
        raise BadSignature("the signed body is not a Stripe event") from None
    return event


def verify_vapi(*, secret: str | None, body: bytes, headers: Mapping[str, str]) -> None:
    """``x-vapi-secret`` equal to the secret, or ``x-signature`` = hex HMAC-SHA256 of
    ``{x-timestamp}.{body}`` with a timestamp inside the tolerance window."""
    if not secret:
        raise BadSignature("VAPI_WEBHOOK_SECRET is not set, so Vapi webhooks can't be verified")
    shared = headers.get("x-vapi-secret")
    signature = headers.get("x-signature")
    if shared is not None:
        if not hmac.compare_digest(shared.encode(), secret.encode()):
            raise BadSignature("x-vapi-secret does not match")
    elif signature is not None:
        stamp = headers.get("x-timestamp", "")
        try:
            age = abs(time.time() - float(stamp))
        except ValueError:
            raise BadSignature("missing or unreadable x-timestamp") from None
        if age > TOLERANCE_S:
            raise BadSignature("x-timestamp is outside the 5-minute window")
        expected = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256)
        if not hmac.compare_digest(expected.hexdigest(), signature.strip().lower()):
            raise BadSignature("x-signature does not match")
    else:
        raise BadSignature("missing x-vapi-secret or x-signature")


def _short(error: Exception) -> str:
    return str(error).splitlines()[0][:120] if str(error) else type(error).__name__
