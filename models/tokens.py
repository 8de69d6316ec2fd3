"""Signed, tamper-proof tokens for links that work without a login (unsubscribe)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

#: Hex digits of HMAC-SHA256 kept in a token: 128 bits.
SIGNATURE_LENGTH = 32


@dataclass(frozen=True, kw_only=True)
class UnsubscribeRequest:
    """Who a token lets unsubscribe, from which channel."""

    org_id: str
    contact_id: str
    channel: str


def unsubscribe_token(*, secret: str, org_id: str, contact_id: str, channel: str) -> str:
    """A URL-safe token naming the org, contact and channel, signed with the org's secret."""
    payload = f"{org_id}.{contact_id}.{channel}"
    encoded = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
    return f"{encoded}.{_sign(secret, payload)}"


def token_org(token: str) -> str | None:
    """The org a token claims to be from (unverified: look up its secret, then ``verify``)."""
    payload = _payload(token)
    return payload.split(".")[0] if payload else None


def verify_unsubscribe_token(token: str, *, secret: str) -> UnsubscribeRequest | None:
    """What the token asks for, or ``None`` if it was not signed with ``secret`` or is malformed."""
    payload = _payload(token)
    if payload is None:
        return None
    signature = token.rsplit(".", 1)[1]
    if not hmac.compare_digest(signature, _sign(secret, payload)):
        return None
    parts = payload.split(".")
    if len(parts) != 3 or not all(parts):
        return None
    return UnsubscribeRequest(org_id=parts[0], contact_id=parts[1], channel=parts[2])


def _payload(token: str) -> str | None:
    encoded, dot, signature = token.partition(".")
    if not dot or not encoded or len(signature) != SIGNATURE_LENGTH:
        return None
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


def _sign(secret: str, payload: str) -> str:
    digest = hmac.new(secret.encode(), f"unsubscribe:{payload}".encode(), hashlib.sha256)
    return digest.hexdigest()[:SIGNATURE_LENGTH]
