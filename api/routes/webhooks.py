"""Provider webhooks: verify the signature, record the receipt, then route (API.md).

Each event is recorded with the provider's event id, unique per org and provider, in the same
transaction as its database effects (a delivery status, an inbound message, a call report, a
payment). Workflows are told after the commit; the receipt is marked routed once they have
been, so a provider's retry after a failure here routes it again, and a retry after success
changes nothing. Workflows drop signals they have already seen.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from pydantic import BaseModel, SecretStr
from sqlmodel import Session
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.messages import ConfirmationInput
from api.deps import DatabaseDep, IdParam, SettingsDep, TemporalConnectionDep
from api.errors import ApiError
from api.intake import accept_intake
from api.routes.attention import start_escalation
from api.signatures import (
    BadSignature,
    verify_resend,
    verify_stripe,
    verify_twilio,
    verify_vapi,
)
from models.errors import NotFound
from models.rules.calls import outcome_of
from models.rules.contacts import normalize_phone
from models.rules.escalations import Priority
from models.rules.messages import MISSED_CALL
from models.rules.needs_person import NEGATIVE_SENTIMENT, complaint_words, sentiment
from models.rules.orgs import org_settings
from models.services.calls import CallReport, record_call_report
from models.services.escalations import escalate_thread
from models.services.inbound import (
    DeliveryReport,
    InboundCall,
    PaymentEvent,
    apply_delivery_report,
    opt_out_reach,
    record_inbound_call,
    record_inbound_message,
    record_payment,
)
from models.settings import Settings
from models.store.contacts import customer_value
from models.store.orgs import get_org
from models.store.receipts import mark_routed, record_webhook
from models.store.threads import thread_of_contact
from models.tables import Escalation, Lead, Message, Org
from models.values import CallOutcome, Channel, MessageStatus, WebhookProvider, consent_channel
from workflows.calls import CallEnded, CallWorkflow
from workflows.confirmation import ConfirmationWorkflow
from workflows.lead import ConsentChanged, LeadWorkflow, PaymentReceived, ReplyReceived
from workflows.task_queues import LEADS

log = logging.getLogger("keepwarm.webhooks")
T = TypeVar("T")
router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

#: Twilio message statuses, as keepwarm's.
TWILIO_STATUSES: dict[str, MessageStatus] = {
    "accepted": MessageStatus.QUEUED,
    "scheduled": MessageStatus.QUEUED,
    "queued": MessageStatus.QUEUED,
    "sending": MessageStatus.SENT,
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.DELIVERED,
    "undelivered": MessageStatus.FAILED,
    "failed": MessageStatus.FAILED,
    "canceled": MessageStatus.FAILED,
}
#: Final Twilio statuses of an inbound call nobody picked up (``CallStatus``, or
#: ``DialCallStatus`` when the call was forwarded with ``<Dial>``), and of one picked up.
TWILIO_MISSED_CALL = {"no-answer", "busy", "failed", "canceled"}
TWILIO_ANSWERED_CALL = {"completed", "answered"}
#: Twilio error codes meaning the person opted out at the carrier.
TWILIO_OPTED_OUT = {"21610"}
#: Whole-message keywords (any case) that withdraw or restore SMS consent (DESIGN.md).
OPT_OUT_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
OPT_IN_WORDS = {"START", "UNSTOP"}
#: Opt-in words that are also answers to a question a message asked ("Reply YES"): replies.
OPT_IN_REPLIES = {"YES"}
#: Whole-message keywords that ask for the org's help reply.
HELP_WORDS = {"HELP", "INFO"}
#: Resend events and what they say about the email.
RESEND_EVENTS: dict[str, DeliveryReport] = {
    "email.sent": DeliveryReport(status=MessageStatus.SENT),
    "email.delivered": DeliveryReport(status=MessageStatus.DELIVERED),
    "email.delivery_delayed": DeliveryReport(status=None, engagement="delivery delayed"),
    "email.bounced": DeliveryReport(
        status=MessageStatus.FAILED, error="bounced", revoke_consent=True
    ),
    "email.failed": DeliveryReport(status=MessageStatus.FAILED, error="failed"),
    "email.complained": DeliveryReport(
        status=None, engagement="marked as spam", revoke_consent=True
    ),
    "email.opened": DeliveryReport(status=None, engagement="opened"),
    "email.clicked": DeliveryReport(status=None, engagement="clicked"),
}
#: Stripe events that move money for a lead: (kind, status).
STRIPE_EVENTS: dict[str, tuple[str, str]] = {
    "checkout.session.completed": ("checkout", "paid"),
    "invoice.paid": ("invoice", "paid"),
    "invoice.payment_failed": ("invoice", "failed"),
    "charge.refunded": ("refund", "refunded"),
}


class WebhookAck(BaseModel):
    """What every verified webhook gets back."""

    received: bool = True
    duplicate: bool


class Rejections:
    """Webhooks refused for their signature, per provider and org (this process)."""

    def __init__(self) -> None:
        """Start at zero."""
        self.counts: Counter[tuple[str, str]] = Counter()

    def reject(self, provider: WebhookProvider, org_id: str, reason: BadSignature) -> ApiError:
        """Count and log a refusal; the 401 to raise."""
        self.counts[(provider.value, org_id)] += 1
        log.warning("rejected %s webhook for org %s: %s", provider.value, org_id, reason)
        return ApiError(401, f"Webhook signature invalid: {reason}")


def _verified(
    request: Request, provider: WebhookProvider, org_id: str, check: Callable[[], T]
) -> T:
    """``check()`` (a signature check); a bad signature is counted, logged and answered 401."""
    try:
        return check()
    except BadSignature as bad:
        counter: Rejections = request.app.state.webhook_rejections
        raise counter.reject(provider, org_id, bad) from None


def _plain(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret else None


#: What to tell Temporal after the commit, if anything.
Notify = Callable[[Client], Awaitable[None]] | None


@dataclass(frozen=True)
class _Recorded:
    receipt_id: str
    new: bool
    routed: bool
    notify: Notify


async def _handle(
    *,
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
    org_id: str,
    provider: WebhookProvider,
    event_id: str,
    event_type: str,
    payload: dict[str, Any],
    apply: Callable[[Session, Org], Notify],
) -> WebhookAck:
    """Record the receipt and apply its database effects in one transaction, then notify."""

    def record(session: Session) -> _Recorded:
        org = get_org(session, org_id=org_id)
        receipt, new = record_webhook(
            session,
            org_id=org_id,
            provider=provider,
            event_id=event_id,
            event_type=event_type,
            payload=payload,
        )
        if receipt.routed_at is not None:
            return _Recorded(receipt.id, new, True, None)
        notify = apply(session, org)  # idempotent: a retried, unrouted event runs it again
        if notify is None:
            mark_routed(session, org_id=org_id, receipt_id=receipt.id)
        return _Recorded(receipt.id, new, notify is None, notify)

    try:
        recorded = await database.run(record)
    except NotFound:
        raise ApiError(404, "No such org.") from None
    if recorded.notify is not None:
        await recorded.notify(await temporal.client())
        await database.run(mark_routed, org_id=org_id, receipt_id=recorded.receipt_id)
    return WebhookAck(duplicate=not recorded.new)


# --- Twilio --------------------------------------------------------------------------------


@router.post("/twilio/{org_id}")
async def twilio_webhook(
    org_id: IdParam,
    request: Request,
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
    settings: SettingsDep,
) -> WebhookAck:
    """An inbound SMS/WhatsApp, a message status callback or a call status callback, signed
    with the Twilio auth token."""
    body = await request.body()
    try:
        params = dict(parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=bool(body)))
    except (UnicodeDecodeError, ValueError):
        params = {}
    query = f"?{request.url.query}" if request.url.query else ""
    url = f"{settings.effective_public_url}{request.url.path}{query}"
    _verified(
        request,
        WebhookProvider.TWILIO,
        org_id,
        lambda: verify_twilio(
            auth_token=_plain(settings.twilio_auth_token),
            url=url,
            params=params,
            signature=request.headers.get("x-twilio-signature"),
        ),
    )
    sid = params.get("MessageSid") or params.get("SmsSid")
    if not sid and params.get("CallSid"):
        return await _twilio_call(database, temporal, org_id, params)
    if not sid:
        raise ApiError(422, "A Twilio message webhook needs MessageSid.")
    if "MessageStatus" in params and params.get("SmsStatus") != "received":
        return await _twilio_status(
            database, temporal, org_id, params, key=request.query_params.get("key")
        )
    return await _twilio_inbound(database, temporal, settings, org_id, params)


async def _twilio_status(
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
    org_id: str,
    params: dict[str, str],
    *,
    key: str | None,
) -> WebhookAck:
    sid = params.get("MessageSid") or params["SmsSid"]
    raw = params["MessageStatus"].lower()
    status = TWILIO_STATUSES.get(raw)
    code = params.get("ErrorCode") or None
    report = DeliveryReport(
        status=status,
        error=f"Twilio {code}" if code else None,
        revoke_consent=code in TWILIO_OPTED_OUT,
    )

    def apply(session: Session, org: Org) -> Notify:
        if status is None:
            return None
        message = apply_delivery_report(
            session,
            org_id=org.id,
            report=report,
            provider_message_id=sid,
            idempotency_key=key,
            source="twilio status callback",
        )
        return _revoked(session, org_id=org.id, report=report, message=message)

    return await _handle(
        database=database,
        temporal=temporal,
        org_id=org_id,
        provider=WebhookProvider.TWILIO,
        event_id=f"{sid}:{raw}",
        event_type="status_callback",
        payload=params,
        apply=apply,
    )


async def _twilio_inbound(
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
    settings: Settings,
    org_id: str,
    params: dict[str, str],
) -> WebhookAck:
    sid = params.get("MessageSid") or params["SmsSid"]
    raw_from = params.get("From", "")
    channel = Channel.WHATSAPP if raw_from.startswith("whatsapp:") else Channel.SMS
    text = params.get("Body", "")
    word = text.strip().upper()
    opt_out_type = params.get("OptOutType", "").upper()
    consent: bool | None = None
    keyword: str | None = None
    if opt_out_type == "STOP" or word in OPT_OUT_WORDS:
        consent, keyword = False, "stop"
    elif word in OPT_IN_REPLIES:
        consent = True  # an opt-in that is also an answer ("Reply YES"): a reply to the lead
    elif opt_out_type == "START" or word in OPT_IN_WORDS:
        consent, keyword = True, "start"
    elif opt_out_type == "HELP" or word in HELP_WORDS:
        keyword = "help"
    # With Twilio's Advanced Opt-Out on (OptOutType present), Twilio has already answered.
    answer = keyword is not None and not opt_out_type

    def apply(session: Session, org: Org) -> Notify:
        region = org_settings(org).default_region
        phone = normalize_phone(raw_from.removeprefix("whatsapp:"), region=region)
        if phone is None:
            raise ApiError(422, "The sender is not a valid phone number.")
        inbound = record_inbound_message(
            session,
            org_id=org.id,
            channel=channel,
            from_phone=phone,
            to_address=params.get("To", "").removeprefix("whatsapp:") or None,
            body=text,
            provider_message_id=sid,
            consent=consent,
            source="twilio",
            implies_consent=keyword != "help",
        )
        if keyword is not None:
            # A keyword, not a conversation: answered once; an opt-out is told to the lead.
            reach = (
                opt_out_reach(session, org_id=org.id, contact_id=inbound.contact_id)
                if consent is False
                else None
            )

            async def confirm(client: Client) -> None:
                assert keyword is not None
                if answer:
                    await _confirm(
                        client, org_id=org.id, message_id=inbound.message_id, kind=keyword
                    )
                if reach is not None and reach.workflow_id:
                    change = ConsentChanged(
                        channel=consent_channel(channel),
                        granted=False,
                        opted_out_everywhere=reach.everywhere,
                    )
                    await _signal(client, reach.workflow_id, LeadWorkflow.consent_changed, change)

            return confirm
        reply = ReplyReceived(message_id=inbound.message_id, channel=channel)
        flagged = _needs_person(session, org=org, contact_id=inbound.contact_id, text=text)

        async def notify(client: Client) -> None:
            if flagged is not None:
                await start_escalation(client, flagged)
            if inbound.workflow_id and await _signal(
                client, inbound.workflow_id, LeadWorkflow.message_received, reply
            ):
                return
            # No open lead (or it just closed): the message opens one, like a form would.
            await accept_intake(
                client=client,
                database=database,
                org=org,
                event_id=f"twilio:{sid}",
                source=channel.value,
                payload={"phone": phone, "source": channel.value, "message": text[:5000]},
            )

        return notify

    return await _handle(
        database=database,
        temporal=temporal,
        org_id=org_id,
        provider=WebhookProvider.TWILIO,
        event_id=sid,
        event_type="inbound_message",
        payload=params,
        apply=apply,
    )


def _needs_person(session: Session, *, org: Org, contact_id: str, text: str) -> Escalation | None:
    """A message that needs a person opens an escalation on the thread: one that reads as a
    complaint (its words: high priority), one whose sentiment is negative (medium), or any
    message of a VIP, a contact worth at least the org's ``vip_value`` (medium)."""
    thread_id = thread_of_contact(session, contact_id=contact_id)
    if thread_id is None:
        return None
    words = complaint_words(text)
    priority: Priority
    if words:
        reason, priority = "complaint", "high"
        summary = f"Inbound message reads as a complaint ({', '.join(words)}): {text[:300]}"
    elif (score := sentiment(text)) <= NEGATIVE_SENTIMENT:
        reason, priority = "negative_sentiment", "medium"
        summary = f"Inbound message reads as negative (sentiment {score:.2f}): {text[:300]}"
    else:
        threshold = org_settings(org).vip_value
        if threshold is None:
            return None
        value = customer_value(session, org_id=org.id, contact_id=contact_id)
        if value < threshold:
            return None
        reason, priority = "vip", "medium"
        summary = f"Message from a VIP (value {value:.0f}, VIP from {threshold:.0f}): {text[:300]}"
    row, _ = escalate_thread(
        session,
        org_id=org.id,
        thread_id=thread_id,
        reason=reason,
        priority=priority,
        summary=summary,
    )
    return row


async def _twilio_call(
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
    org_id: str,
    params: dict[str, str],
) -> WebhookAck:
    sid = params["CallSid"]
    # A <Dial> action callback says how the forwarded leg went; the caller's own leg is
    # "completed" whether or not anyone picked up.
    status = (params.get("DialCallStatus") or params.get("CallStatus") or "").lower()
    if params.get("Direction", "").lower() != "inbound" or status not in (
        TWILIO_MISSED_CALL | TWILIO_ANSWERED_CALL
    ):
        return WebhookAck(duplicate=False)  # a call keepwarm placed, or one still going
    return await _inbound_call(
        database=database,
        temporal=temporal,
        org_id=org_id,
        provider=WebhookProvider.TWILIO,
        event_id=f"{sid}:{status}",
        payload=params,
        caller=params.get("From", ""),
        call=lambda phone: InboundCall(
            provider_call_id=sid,
            from_phone=phone,
            to_address=params.get("To") or None,
            missed=status in TWILIO_MISSED_CALL,
            source="twilio",
        ),
    )


async def _inbound_call(
    *,
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
    org_id: str,
    provider: WebhookProvider,
    event_id: str,
    payload: dict[str, Any],
    caller: str,
    call: Callable[[str], InboundCall],
    accept: Callable[[Org], bool] = lambda org: True,
) -> WebhookAck:
    """A call to the org that ended: on the caller's thread, told to their open lead like a
    text (its sequence and call loop stop), and, if nobody picked up, texted back once."""

    def apply(session: Session, org: Org) -> Notify:
        if not accept(org):
            return None
        region = org_settings(org).default_region
        phone = normalize_phone(caller, region=region)
        if phone is None:
            # A withheld or unknown number: nobody to answer (the number is not logged).
            log.info("inbound %s call to org %s has no caller number", provider.value, org.id)
            return None
        ended = call(phone)
        inbound = record_inbound_call(session, org_id=org.id, call=ended)
        workflow_id = inbound.workflow_id
        if workflow_id is None and not ended.missed:
            return None
        reply = ReplyReceived(message_id=inbound.message_id, channel=Channel.VOICE)

        async def notify(client: Client) -> None:
            if workflow_id is not None:
                # A call from a lead that has just closed is on its thread; nothing to open.
                await _signal(client, workflow_id, LeadWorkflow.message_received, reply)
            if ended.missed:
                await _confirm(
                    client, org_id=org.id, message_id=inbound.message_id, kind=MISSED_CALL
                )

        return notify

    return await _handle(
        database=database,
        temporal=temporal,
        org_id=org_id,
        provider=provider,
        event_id=event_id,
        event_type="inbound_call",
        payload=payload,
        apply=apply,
    )


def _revoked(
    session: Session, *, org_id: str, report: DeliveryReport, message: Message | None
) -> Notify:
    """A report that withdrew consent (a bounce, a complaint, Twilio 21610) is told to the
    lead at once, like a STOP: one reachable on no channel any more ends."""
    if not report.revoke_consent or message is None or message.lead_id is None:
        return None
    lead = session.get(Lead, message.lead_id)
    if lead is None:
        return None
    reach = opt_out_reach(session, org_id=org_id, contact_id=lead.contact_id)
    if reach.workflow_id is None:
        return None
    workflow_id = reach.workflow_id
    change = ConsentChanged(
        channel=consent_channel(Channel(message.channel)),
        granted=False,
        opted_out_everywhere=reach.everywhere,
    )

    async def notify(client: Client) -> None:
        await _signal(client, workflow_id, LeadWorkflow.consent_changed, change)

    return notify


async def _confirm(client: Client, *, org_id: str, message_id: str, kind: str) -> None:
    """Start the workflow that answers a keyword or a missed call (once: a redelivery finds
    it started)."""
    text_back = kind == MISSED_CALL
    try:
        await client.start_workflow(
            ConfirmationWorkflow.run,
            ConfirmationInput(org_id=org_id, inbound_message_id=message_id, kind=kind),
            id=f"{'text-back' if text_back else 'confirm'}-{org_id}-{message_id}",
            task_queue=LEADS,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary="missed-call text-back" if text_back else f"{kind.upper()} confirmation",
        )
    except WorkflowAlreadyStartedError:
        return
    except RPCError as error:
        raise ApiError(503, "Temporal is unavailable; retry shortly.") from error


async def _signal(client: Client, workflow_id: str, signal: Any, arg: Any) -> bool:
    """Signal the workflow's current run; ``False`` if it has ended or never existed."""
    try:
        await client.get_workflow_handle(workflow_id).signal(signal, arg)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        raise ApiError(503, "Temporal is unavailable; retry shortly.") from error
    return True


# --- Resend --------------------------------------------------------------------------------


@router.post("/resend/{org_id}")
async def resend_webhook(
    org_id: IdParam,
    request: Request,
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
    settings: SettingsDep,
) -> WebhookAck:
    """An email event, signed the Svix way with ``RESEND_WEBHOOK_SECRET``."""
    body = await request.body()
    event = _verified(
        request,
        WebhookProvider.RESEND,
        org_id,
        lambda: verify_resend(
            secret=_plain(settings.resend_webhook_secret), body=body, headers=request.headers
        ),
    )
    if not isinstance(event, dict):
        raise ApiError(422, "A Resend event is a JSON object.")
    event_type = str(event.get("type", ""))
    report = RESEND_EVENTS.get(event_type)
    if report is None:
        return WebhookAck(duplicate=False)  # not an event keepwarm acts on
    data = _object(event.get("data"))
    email_id = str(data.get("email_id") or "") or None
    if email_id is None:
        raise ApiError(422, "A Resend email event needs data.email_id.")

    def apply(session: Session, org: Org) -> Notify:
        message = apply_delivery_report(
            session,
            org_id=org.id,
            report=report,
            provider_message_id=email_id,
            source=f"resend {event_type}",
        )
        return _revoked(session, org_id=org.id, report=report, message=message)

    return await _handle(
        database=database,
        temporal=temporal,
        org_id=org_id,
        provider=WebhookProvider.RESEND,
        event_id=request.headers.get("svix-id", ""),
        event_type=event_type,
        payload=event,
        apply=apply,
    )


# --- Stripe --------------------------------------------------------------------------------


@router.post("/stripe/{org_id}")
async def stripe_webhook(
    org_id: IdParam,
    request: Request,
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
    settings: SettingsDep,
) -> WebhookAck:
    """A Stripe event, signed with ``STRIPE_WEBHOOK_SECRET``."""
    body = await request.body()
    event = _verified(
        request,
        WebhookProvider.STRIPE,
        org_id,
        lambda: verify_stripe(
            secret=_plain(settings.stripe_webhook_secret),
            body=body,
            signature=request.headers.get("stripe-signature"),
        ),
    )
    known = STRIPE_EVENTS.get(event.type)
    if known is None:
        return WebhookAck(duplicate=False)
    kind, status = known
    obj = _object(event.data.object.to_dict())
    amount_field = {
        "checkout": "amount_total",
        "refund": "amount_refunded",
        "invoice": "amount_paid" if status == "paid" else "amount_due",
    }[kind]
    lead_id = _object(obj.get("metadata")).get("lead_id")
    amount = obj.get(amount_field)
    payment = PaymentEvent(
        stripe_event_id=event.id,
        stripe_object_id=str(obj.get("id") or ""),
        kind=kind,
        status=status,
        amount=amount if isinstance(amount, int) else None,
        currency=obj.get("currency"),
        lead_id=str(lead_id) if lead_id else None,
    )

    def apply(session: Session, org: Org) -> Notify:
        recorded = record_payment(session, org_id=org.id, event=payment)
        if recorded is None or recorded.workflow_id is None:
            return None
        message = PaymentReceived(payment_id=recorded.payment_id, status=status)
        workflow_id = recorded.workflow_id

        async def notify(client: Client) -> None:
            await _signal(client, workflow_id, LeadWorkflow.payment_received, message)

        return notify

    return await _handle(
        database=database,
        temporal=temporal,
        org_id=org_id,
        provider=WebhookProvider.STRIPE,
        event_id=event.id,
        event_type=event.type,
        payload=event.to_dict(),
        apply=apply,
    )


# --- Vapi ----------------------------------------------------------------------------------


@router.post("/vapi/{org_id}")
async def vapi_webhook(
    org_id: IdParam,
    request: Request,
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
    settings: SettingsDep,
) -> WebhookAck:
    """A Vapi server message, with ``x-vapi-secret`` or an HMAC signature."""
    body = await request.body()
    _verified(
        request,
        WebhookProvider.VAPI,
        org_id,
        lambda: verify_vapi(
            secret=_plain(settings.vapi_webhook_secret), body=body, headers=request.headers
        ),
    )
    try:
        parsed = json.loads(body)
    except ValueError:
        raise ApiError(422, "A Vapi server message is JSON.") from None
    message = parsed.get("message") if isinstance(parsed, dict) else None
    if not isinstance(message, dict):
        raise ApiError(422, "A Vapi server message has a `message` object.")
    kind = str(message.get("type", ""))
    call = _object(message.get("call"))
    call_id = str(call.get("id") or "")
    if kind not in {"end-of-call-report", "status-update"}:
        return WebhookAck(duplicate=False)
    if not call_id:
        raise ApiError(422, "A Vapi call message needs call.id.")
    if kind == "status-update":
        return await _handle(
            database=database,
            temporal=temporal,
            org_id=org_id,
            provider=WebhookProvider.VAPI,
            event_id=f"{call_id}:status:{message.get('status')}",
            event_type=kind,
            payload=parsed,
            apply=lambda session, org: None,
        )
    if call.get("type") == "inboundPhoneCall":
        return await _vapi_inbound_call(database, temporal, org_id, parsed, message, call)
    metadata = _object(call.get("metadata") or message.get("metadata"))
    analysis = _object(message.get("analysis"))
    report = CallReport(
        provider_call_id=call_id,
        call_key=str(metadata["call_key"]) if metadata.get("call_key") else None,
        ended_reason=str(message.get("endedReason") or "unknown"),
        summary=message.get("summary") or analysis.get("summary"),
        duration_s=_number(message.get("durationSeconds")),
        cost=_number(message.get("cost")),
        ended_at=_timestamp(message.get("endedAt")),
    )

    def apply(session: Session, org: Org) -> Notify:
        recorded = record_call_report(session, org_id=org.id, report=report)
        if recorded is None:
            return None  # not a call keepwarm placed for this org
        ended = CallEnded(
            call_id=recorded.id,
            ended_reason=report.ended_reason,
            outcome=CallOutcome(recorded.outcome) if recorded.outcome else None,
        )
        workflow_id = recorded.workflow_id

        async def notify(client: Client) -> None:
            await _signal(client, workflow_id, CallWorkflow.call_ended, ended)

        return notify

    return await _handle(
        database=database,
        temporal=temporal,
        org_id=org_id,
        provider=WebhookProvider.VAPI,
        event_id=f"{call_id}:end-of-call-report",
        event_type=kind,
        payload=parsed,
        apply=apply,
    )


async def _vapi_inbound_call(
    database: DatabaseDep,
    temporal: TemporalConnectionDep,
    org_id: str,
    parsed: dict[str, Any],
    message: dict[str, Any],
    call: dict[str, Any],
) -> WebhookAck:
    """An inbound call to the org's Vapi number ended; unanswered unless its ``endedReason``
    says someone (the assistant) spoke with the caller."""
    call_id = str(call["id"])
    customer = _object(call.get("customer") or message.get("customer"))
    number = _object(call.get("phoneNumber") or message.get("phoneNumber"))
    number_id = call.get("phoneNumberId") or number.get("id")
    missed = outcome_of(str(message.get("endedReason") or "")) != CallOutcome.ANSWERED

    def ours(org: Org) -> bool:
        # Vapi's signature doesn't cover the org in the path: a call to another org's number
        # is not this org's to answer.
        own = org_settings(org).vapi_phone_number_id
        if own and number_id and number_id != own:
            log.warning("vapi call %s for org %s was to another number; ignored", call_id, org.id)
            return False
        return True

    return await _inbound_call(
        database=database,
        temporal=temporal,
        org_id=org_id,
        provider=WebhookProvider.VAPI,
        event_id=f"{call_id}:end-of-call-report",
        payload=parsed,
        caller=str(customer.get("number") or ""),
        call=lambda phone: InboundCall(
            provider_call_id=call_id,
            from_phone=phone,
            to_address=str(number["number"]) if number.get("number") else None,
            missed=missed,
            source="vapi",
        ),
        accept=ours,
    )


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
