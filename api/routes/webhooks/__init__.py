"""Provider webhooks, one module per provider: verify the signature, record the receipt, then
route (API.md).

Each event is recorded with the provider's event id, unique per org and provider, in the same
transaction as its database effects (a delivery status, an inbound message, a call report, a
payment). Workflows are told after the commit; the receipt is marked routed once they have
been, so a provider's retry after a failure here routes it again, and a retry after success
changes nothing. A receipt no retry routes (Temporal was away; Twilio and Vapi don't always
retry) is routed by the sweeper (``api.sweeper``) with the same ``routing`` function.
Workflows drop signals they have already seen.
"""

from __future__ import annotations

from fastapi import APIRouter

from api.openapi import errors
from api.routes.webhooks import resend, stripe, twilio, vapi
from api.routes.webhooks.common import Rejections, Router, Routing, WebhookAck
from models.values import WebhookProvider

router = APIRouter(
    prefix="/v1/webhooks",
    tags=["webhooks"],
    responses=errors(401, 404, 413, 422, 503, bearer=False),
)
for provider in (twilio, resend, stripe, vapi):
    router.include_router(provider.router)

#: The bodies the webhook routes read themselves (after their signature), for the OpenAPI
#: document.
PAYLOADS = (twilio.TwilioForm, resend.ResendEvent, stripe.StripeEvent, vapi.VapiServerMessage)

#: Each provider's ``routing``: what its route and the sweeper read a payload with.
ROUTERS: dict[WebhookProvider, Router] = {
    WebhookProvider.TWILIO: twilio.routing,
    WebhookProvider.RESEND: resend.routing,
    WebhookProvider.STRIPE: stripe.routing,
    WebhookProvider.VAPI: vapi.routing,
}

__all__ = ["PAYLOADS", "ROUTERS", "Rejections", "Router", "Routing", "WebhookAck", "router"]
