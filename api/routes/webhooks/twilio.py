"""Twilio: inbound SMS and WhatsApp messages, message status callbacks, inbound calls."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from pydantic import ConfigDict, Field, model_validator
from sqlmodel import Session
from temporalio.client import Client

from api.deps import Database, DatabaseDep, IdParam, SettingsDep, TemporalConnectionDep
from api.errors import invalid
from api.intake import accept_intake
from api.openapi import signed_body
from api.routes.webhooks.common import (
    Notify,
    NulFree,
    ProviderPayload,
    Routing,
    WebhookAck,
    handle,
    inbound_call,
    plain,
    revoked,
    validated,
    verified,
)
from api.signatures import verify_twilio
from api.temporal import acknowledge_alert, confirm, start_escalation, tell, tell_if_reachable
from models.rules.alerts import ack_code_in
from models.rules.contacts import normalize_phone
from models.rules.keywords import InboundText, classify
from models.rules.orgs import org_settings
from models.services.alerts import alert_acknowledged_by_text
from models.services.bookings import BookingReply, booking_reply, note_complaint
from models.services.inbound import (
    DeliveryReport,
    InboundCall,
    InboundRecorded,
    apply_delivery_report,
    flag_if_needs_person,
    opt_out_reach,
    record_inbound_message,
)
from models.tables import Org, utcnow
from models.values import (
    Channel,
    EscalationReason,
    MessageStatus,
    WebhookProvider,
    consent_channel,
)
from workflows.appointment import AppointmentWorkflow, BookingNews
from workflows.lead import ConsentChanged, LeadWorkflow, ReplyReceived

router = APIRouter()

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
#: Where a receipt keeps the status callback URL's ``key`` query parameter (the message's
#: idempotency key) beside the form fields: Twilio's own fields never start with ``?``.
CALLBACK_KEY = "?key"


def _field(description: str, max_length: int | None = None) -> Any:
    return Field(default=None, description=description, max_length=max_length)


#: Twilio's ids are 34 characters; keepwarm stores up to 100.
_SID = 100


class TwilioForm(ProviderPayload):
    """The form fields of a Twilio webhook that keepwarm reads; Twilio sends more, all text.

    A message's webhook names it (``MessageSid``, or ``SmsSid``); a call's, the call
    (``CallSid``).
    """

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "anyOf": [
                {"required": [sid], "properties": {sid: {"minLength": 1}}}
                for sid in ("MessageSid", "SmsSid", "CallSid")
            ]
        },
    )
    __pydantic_extra__: dict[str, NulFree]

    MessageSid: NulFree | None = _field("The message.", _SID)
    SmsSid: NulFree | None = _field("The message, as older callbacks name it.", _SID)
    CallSid: NulFree | None = _field("The call, on a call's status callback.", _SID)
    From: NulFree | None = _field(
        "The sender: a phone number, `whatsapp:`-prefixed on WhatsApp. An inbound message "
        "from anything else is refused (422); a call from one (withheld) is ignored."
    )
    To: NulFree | None = _field("The org's number it was sent to.", 320)
    Body: NulFree | None = _field("The text of an inbound message.")
    MessageStatus: NulFree | None = _field("A status callback's message status.")
    SmsStatus: NulFree | None = _field("`received` on an inbound message.")
    ErrorCode: NulFree | None = _field("Why a message failed (21610: opted out).", 32)
    OptOutType: NulFree | None = _field("STOP, START or HELP with Advanced Opt-Out on.")
    CallStatus: NulFree | None = _field("A call's status.")
    DialCallStatus: NulFree | None = _field("How a forwarded call's leg went.")
    Direction: NulFree | None = _field("`inbound` for a call to the org.")

    @model_validator(mode="after")
    def _names_a_message_or_call(self) -> TwilioForm:
        if not (self.MessageSid or self.SmsSid or self.CallSid):
            raise ValueError("a Twilio webhook needs MessageSid (or SmsSid), or CallSid")
        return self


#: The contract of ``POST /v1/webhooks/twilio/{org_id}`` beyond its path.
_REQUEST = signed_body(
    TwilioForm,
    media_type="application/x-www-form-urlencoded",
    headers=[
        {
            "name": "X-Twilio-Signature",
            "in": "header",
            "required": True,
            "schema": {"type": "string", "minLength": 1},
            "description": "Base64 HMAC-SHA1, with the org's Twilio auth token, of the public "
            "URL and the sorted form fields.",
        },
        {
            "name": "key",
            "in": "query",
            "required": False,
            "schema": {"type": "string"},
            "description": "On a status callback: the message's idempotency key.",
        },
    ],
)


@router.post("/twilio/{org_id}", openapi_extra=_REQUEST)
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
    verified(
        request,
        WebhookProvider.TWILIO,
        org_id,
        lambda: verify_twilio(
            auth_token=plain(settings.twilio_auth_token),
            url=url,
            params=params,
            signature=request.headers.get("x-twilio-signature"),
        ),
    )
    payload: dict[str, Any] = dict(params)
    key = request.query_params.get("key")
    if key is not None:
        payload[CALLBACK_KEY] = key
    return await handle(
        database=database,
        temporal=temporal,
        org_id=org_id,
        provider=WebhookProvider.TWILIO,
        payload=payload,
        routing=routing(payload, database=database),
    )


def routing(payload: dict[str, Any], *, database: Database) -> Routing | None:
    """A Twilio webhook's form fields (and its URL's ``key``, as ``CALLBACK_KEY``): an
    inbound message, a message's status callback, or an inbound call that ended."""
    validated(TwilioForm, payload)
    if not (payload.get("MessageSid") or payload.get("SmsSid")):
        return _call(payload)
    if "MessageStatus" in payload and payload.get("SmsStatus") != "received":
        return _status(payload)
    return _inbound(payload, database)


def _status(params: dict[str, Any]) -> Routing:
    sid = params.get("MessageSid") or params["SmsSid"]
    key = params.get(CALLBACK_KEY)
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
        return revoked(session, org_id=org.id, report=report, message=message)

    return Routing(event_id=f"{sid}:{raw}", event_type="status_callback", apply=apply)


def _inbound(params: dict[str, Any], database: Database) -> Routing:
    sid = params.get("MessageSid") or params["SmsSid"]
    raw_from = params.get("From", "")
    channel = Channel.WHATSAPP if raw_from.startswith("whatsapp:") else Channel.SMS
    text = params.get("Body", "")
    keyword = classify(text, opt_out_type=params.get("OptOutType", ""))

    def apply(session: Session, org: Org) -> Notify:
        region = org_settings(org).default_region
        phone = normalize_phone(raw_from.removeprefix("whatsapp:"), region=region)
        if phone is None:
            raise invalid("From", "is not a valid phone number")
        code = ack_code_in(text) if channel == Channel.SMS else None
        ack = (
            alert_acknowledged_by_text(session, org_id=org.id, phone=phone, code=code)
            if code
            else None
        )
        if ack is not None:
            # An alert contact answering a notice, not a customer: no thread, no lead (and
            # an ACK for no open alert is dropped, not answered by the AI).
            workflow_id, alert_id = ack.workflow_id, ack.alert_id
            if workflow_id is None or alert_id is None:
                return None

            async def acknowledge(client: Client) -> None:
                await acknowledge_alert(
                    client, workflow_id=workflow_id, alert_id=alert_id, by=ack.by
                )

            return acknowledge
        inbound = record_inbound_message(
            session,
            org_id=org.id,
            channel=channel,
            from_phone=phone,
            to_address=params.get("To", "").removeprefix("whatsapp:") or None,
            body=text,
            provider_message_id=sid,
            consent=keyword.consent,
            source="twilio",
            implies_consent=keyword.keyword != "help",
        )
        if keyword.keyword is not None:
            return _keyword_effect(session, org, inbound, keyword, channel)
        heard = booking_reply(
            session, org=org, contact_id=inbound.contact_id, body=text, now=utcnow()
        )
        if heard is not None:
            # An answer to a visit's text (C, R, a rating): the booking's, not the lead's.
            return _booking_answered(heard)
        flagged = flag_if_needs_person(session, org=org, contact_id=inbound.contact_id, text=text)
        if flagged is not None and flagged.reason == EscalationReason.COMPLAINT:
            note_complaint(session, org_id=org.id, contact_id=inbound.contact_id, now=utcnow())
        reply = ReplyReceived(message_id=inbound.message_id, channel=channel)

        async def notify(client: Client) -> None:
            if flagged is not None:
                await start_escalation(client, flagged)
            if inbound.workflow_id and await tell(
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

    return Routing(event_id=sid, event_type="inbound_message", apply=apply)


def _booking_answered(heard: BookingReply) -> Notify:
    """Wake the booking's workflow (it thanks the customer), and start the ladder of the item
    an R or a low rating opened."""

    async def answered(client: Client) -> None:
        if heard.escalation is not None:
            await start_escalation(client, heard.escalation)
        await tell_if_reachable(
            client,
            heard.workflow_id,
            AppointmentWorkflow.booking_changed,
            BookingNews(what=heard.kind),
        )

    return answered


def _keyword_effect(
    session: Session, org: Org, inbound: InboundRecorded, keyword: InboundText, channel: Channel
) -> Notify:
    """A keyword, not a conversation: answered once (unless Twilio already did); an opt-out
    is told to the contact's open lead."""
    kind = keyword.keyword
    assert kind is not None
    reach = (
        opt_out_reach(session, org_id=org.id, contact_id=inbound.contact_id)
        if keyword.consent is False
        else None
    )

    async def confirmed(client: Client) -> None:
        if keyword.answer:
            await confirm(client, org_id=org.id, message_id=inbound.message_id, kind=kind)
        if reach is not None and reach.workflow_id:
            change = ConsentChanged(
                channel=consent_channel(channel),
                granted=False,
                opted_out_everywhere=reach.everywhere,
            )
            await tell(client, reach.workflow_id, LeadWorkflow.consent_changed, change)

    return confirmed


def _call(params: dict[str, Any]) -> Routing | None:
    sid = params["CallSid"]
    # A <Dial> action callback says how the forwarded leg went; the caller's own leg is
    # "completed" whether or not anyone picked up.
    status = (params.get("DialCallStatus") or params.get("CallStatus") or "").lower()
    if params.get("Direction", "").lower() != "inbound" or status not in (
        TWILIO_MISSED_CALL | TWILIO_ANSWERED_CALL
    ):
        return None  # a call keepwarm placed, or one still going
    return inbound_call(
        provider=WebhookProvider.TWILIO,
        event_id=f"{sid}:{status}",
        caller=params.get("From", ""),
        call=lambda phone: InboundCall(
            provider_call_id=sid,
            from_phone=phone,
            to_address=params.get("To") or None,
            missed=status in TWILIO_MISSED_CALL,
            source="twilio",
        ),
    )
