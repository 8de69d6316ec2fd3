"""Every automated send is claimed here, once per key, through the compliance gate: consent,
the touch budget, quiet hours, the call cap and a takeover's hold; plus keepwarm's own
answers (keyword confirmations, the missed-call text-back)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from models.database import ROW_LOCK
from models.errors import NotFound
from models.ids import TEXT_BACK_KEY, confirmation_key
from models.rules.compliance import (
    BUDGET_WINDOW,
    REGION_RULES,
    Deferred,
    Verdict,
    call_cap,
    next_open,
    window_for,
)
from models.rules.messages import (
    CONFIRMATIONS,
    SUBJECTS,
    TEMPLATES,
    TEXT_BACK,
    TEXT_BACK_SPACING,
    sender_address,
)
from models.rules.orgs import org_settings
from models.rules.takeover import HELD_BACK
from models.rules.whatsapp import (
    _TEMPLATE_VARIABLE_MAX,
    WHATSAPP_NO_TEMPLATE,
    WHATSAPP_TEMPLATE_MARK,
)
from models.schemas import (
    OrgSettings,
)
from models.store.calls import calls_since, touches_since
from models.store.consent import current_consent
from models.store.contacts import address_for, recipient_of
from models.store.holds import held_until
from models.store.leads import get_lead, open_lead
from models.store.messages import mark_message_failed, note_deferral, whatsapp_session_open
from models.store.orgs import get_org
from models.store.threads import touch_thread
from models.store.timeline import add_to_timeline
from models.tables import (
    Contact,
    Lead,
    Message,
    Thread,
    utcnow,
)
from models.tokens import unsubscribe_token
from models.values import (
    Channel,
    Direction,
    MessageStatus,
    Sender,
    TimelineKind,
    consent_channel,
    new_id,
)


@dataclass(frozen=True, kw_only=True)
class OutboundClaim:
    """The claimed message row and what the send needs besides it."""

    message: Message
    contact_id: str
    subject: str | None
    #: The latest consent on the message's channel (``None``: never asked).
    consent: bool | None
    #: Signs the email's one-click unsubscribe link (email only).
    unsubscribe_token: str | None


def claim_outbound_message(
    session: Session,
    *,
    org_id: str,
    lead_id: str,
    channel: Channel,
    idempotency_key: str,
    template: str,
    text: str | None = None,
    now: datetime | None = None,
) -> OutboundClaim:
    """The outbound message row for ``idempotency_key``, created (status ``pending``) if new.

    Written and committed before any provider call, so a retry finds it and never sends twice.
    The org's provider mode is fixed on the row here, so retries can't switch modes. A new
    touch passes the compliance gate first (quiet hours, touch budget, at ``now``): if it
    may not go yet, nothing is written and ``Deferred`` says until when.

    WhatsApp's form is fixed here too: free text inside 24 h of the contact's last WhatsApp
    message, else the org's ``whatsapp_template_sid`` (marked in ``subject``, see
    ``whatsapp_template``; the body becomes a readable preview). With no template the row
    is written already failed (``WHATSAPP_NO_TEMPLATE``, on the timeline) and never sent.
    """
    org = get_org(session, org_id=org_id)
    lead = get_lead(session, org_id=org_id, lead_id=lead_id)
    # Locked: two workflows claiming touches for one person count the budget one at a time.
    contact = session.get(Contact, lead.contact_id, with_for_update=ROW_LOCK)
    assert contact is not None
    consent = current_consent(session, org_id=org_id, contact_id=contact.id)
    governing = consent_channel(channel)
    token = (
        unsubscribe_token(
            secret=org.id_secret, org_id=org_id, contact_id=contact.id, channel=channel.value
        )
        if channel == Channel.EMAIL
        else None
    )
    existing = session.exec(
        select(Message).where(Message.idempotency_key == idempotency_key)
    ).first()
    if existing is not None:
        if existing.org_id != org_id:
            raise NotFound(idempotency_key)
        if existing.attempted_at is None and existing.status == MessageStatus.PENDING:
            # Claimed before a takeover and retried during it (a provider outage, a crash):
            # it has not reached the provider, so it waits for the release like a new touch.
            held_back_for_takeover(
                session, settings=org_settings(org), contact_id=contact.id, now=now or utcnow()
            )
        return OutboundClaim(
            message=existing,
            contact_id=contact.id,
            subject=existing.subject,
            consent=consent[governing],
            unsubscribe_token=token,
        )
    settings = org_settings(org)
    thread = session.exec(select(Thread).where(Thread.contact_id == contact.id)).first()
    to_address = address_for(session, org_id=org_id, contact_id=contact.id, channel=channel)
    now = now or utcnow()
    if consent[governing] is not False and to_address:
        verdict = check_gate(
            session, settings=settings, lead=lead, contact=contact, channel=channel, now=now
        )
        if not verdict.allowed:
            raise Deferred(verdict)
    from_address = sender_address(settings, channel)
    first_name = ((contact.name or "").split() or ["there"])[0]
    fields = {"first_name": first_name, "name": contact.name or "there", "org_name": org.name}
    body = (text or TEMPLATES[template]).format_map(fields)
    subject_template = SUBJECTS.get(template, "A note from {org_name}")
    subject = subject_template.format_map(fields) if channel == Channel.EMAIL else None
    refusal = None
    # Only a touch that could go out is judged: an opt-out or a missing number fails anyway.
    if (
        channel == Channel.WHATSAPP
        and consent[governing] is not False
        and to_address
        and not whatsapp_session_open(session, org_id=org_id, contact_id=contact.id, now=now)
    ):
        content_sid = settings.whatsapp_template_sid
        if content_sid is None:
            refusal = WHATSAPP_NO_TEMPLATE
        else:
            variables = json.dumps({"1": first_name[:_TEMPLATE_VARIABLE_MAX]}, ensure_ascii=False)
            subject = f"{WHATSAPP_TEMPLATE_MARK}{content_sid} {variables}"
            # Twilio renders the template; the row keeps the text it stands in for.
            body = f"[WhatsApp template {content_sid}] {body}"
    message = Message(
        id=new_id("msg"),
        org_id=org_id,
        lead_id=lead_id,
        thread_id=thread.id if thread else None,
        channel=channel,
        direction=Direction.OUTBOUND,
        sender=Sender.AI,
        to_address=to_address,
        from_address=from_address,
        body=body,
        subject=subject,
        status=MessageStatus.PENDING,
        idempotency_key=idempotency_key,
        mode=settings.provider_mode.value,
        touched_at=now,
    )
    session.add(message)
    session.flush()
    touch_thread(session, message=message)
    if refusal is not None:
        mark_message_failed(session, message_id=message.id, error=refusal)
    return OutboundClaim(
        message=message,
        contact_id=contact.id,
        subject=subject,
        consent=consent[governing],
        unsubscribe_token=token,
    )


def held_back_for_takeover(
    session: Session, *, settings: OrgSettings, contact_id: str, now: datetime
) -> None:
    """``Deferred`` while an operator holds the contact's thread (the gate's takeover rule,
    for a touch or call already claimed that has not been attempted yet)."""
    verdict = hold_verdict(session, contact_id=contact_id, settings=settings, now=now)
    if verdict is not None:
        raise Deferred(verdict)


def gate_verdict(
    session: Session, *, org_id: str, lead_id: str, channel: Channel, now: datetime
) -> Verdict:
    """The compliance gate's answer for a touch of the lead on ``channel`` at ``now``, as a
    workflow's pre-check (the send asks again when it claims the message). A touch held
    back is noted on the lead's timeline."""
    org = get_org(session, org_id=org_id)
    lead = get_lead(session, org_id=org_id, lead_id=lead_id)
    contact = session.get(Contact, lead.contact_id)
    assert contact is not None
    verdict = check_gate(
        session, settings=org_settings(org), lead=lead, contact=contact, channel=channel, now=now
    )
    if not verdict.allowed:
        note_deferral(session, org_id=org_id, lead_id=lead_id, channel=channel, verdict=verdict)
    return verdict


def claim_confirmation(
    session: Session, *, org_id: str, inbound_message_id: str, kind: str
) -> Message:
    """The reply to a STOP, START or HELP message, created if new (``confirm/{inbound id}``).

    Sent whatever the consent (CTIA asks for one confirmation of an opt-out), by the system,
    not counted against the touch budget; HELP answers with the org's ``help_reply``.
    """
    inbound = session.get(Message, inbound_message_id)
    if inbound is None or inbound.org_id != org_id or inbound.direction != Direction.INBOUND:
        raise NotFound(inbound_message_id)
    key = confirmation_key(inbound.id)
    existing = session.exec(select(Message).where(Message.idempotency_key == key)).first()
    if existing is not None:
        return existing
    org = get_org(session, org_id=org_id)
    settings = org_settings(org)
    template = (
        settings.help_reply if kind == "help" and settings.help_reply else CONFIRMATIONS[kind]
    )
    channel = Channel(inbound.channel)
    own_number = settings.whatsapp_from if channel == Channel.WHATSAPP else settings.sms_from
    return _system_answer(
        session,
        inbound=inbound,
        channel=channel,
        own_number=own_number,
        body=template.replace("{org_name}", org.name),
        key=key,
        mode=settings.provider_mode.value,
    )


def _system_answer(
    session: Session,
    *,
    inbound: Message,
    channel: Channel,
    own_number: str | None,
    body: str,
    key: str,
    mode: str,
) -> Message:
    """keepwarm's own answer to an inbound message (a keyword confirmation, a missed-call
    text-back), on its thread and lead, to the number it came from."""
    message = Message(
        id=new_id("msg"),
        org_id=inbound.org_id,
        lead_id=inbound.lead_id,
        thread_id=inbound.thread_id,
        channel=channel,
        direction=Direction.OUTBOUND,
        sender=Sender.SYSTEM,
        to_address=inbound.from_address,
        from_address=own_number or inbound.to_address,
        body=body,
        status=MessageStatus.PENDING,
        idempotency_key=key,
        mode=mode,
    )
    session.add(message)
    session.flush()
    touch_thread(session, message=message)
    return message


@dataclass(frozen=True, kw_only=True)
class TextBackClaim:
    """The text-back row to send, or why none goes out."""

    message: Message | None
    #: Why nothing is sent (words without personal data), when ``message`` is ``None``.
    withheld: str | None = None


def claim_text_back(
    session: Session, *, org_id: str, inbound_message_id: str, now: datetime | None = None
) -> TextBackClaim:
    """The SMS answering a missed call, created if new (``text-back/{inbound id}``).

    Withheld (nothing written but a ``touch_skipped`` note on the caller's open lead) when the
    person withdrew SMS consent, when an operator holds their thread (a person answers, not
    keepwarm), or when a text-back to the same number was claimed less than
    ``TEXT_BACK_SPACING`` before ``now``; both are decided with the contact row locked, so
    two missed calls at once give one text. It answers the person, so like a keyword's
    confirmation it skips quiet hours and the touch budget.
    """
    inbound = session.get(Message, inbound_message_id)
    if (
        inbound is None
        or inbound.org_id != org_id
        or inbound.direction != Direction.INBOUND
        or inbound.channel != Channel.VOICE
        or not inbound.from_address
    ):
        raise NotFound(inbound_message_id)
    thread = session.get(Thread, inbound.thread_id) if inbound.thread_id else None
    if thread is None:
        raise NotFound(inbound_message_id)
    contact = session.get(Contact, thread.contact_id, with_for_update=ROW_LOCK)
    if contact is None:
        raise NotFound(thread.contact_id)
    session.refresh(thread)  # read after the lock: a takeover takes the same one first
    key = f"{TEXT_BACK_KEY}{inbound.id}"
    existing = session.exec(select(Message).where(Message.idempotency_key == key)).first()
    if existing is not None:
        return TextBackClaim(message=existing)
    now = now or utcnow()
    withheld = None
    if current_consent(session, org_id=org_id, contact_id=contact.id)[Channel.SMS] is False:
        withheld = "the person opted out of SMS"
    elif thread.held_by is not None:
        withheld = "an operator holds the conversation"
    elif _texted_back_since(
        session, org_id=org_id, number=inbound.from_address, since=now - TEXT_BACK_SPACING
    ):
        minutes = int(TEXT_BACK_SPACING.total_seconds() // 60)
        withheld = f"this number was texted back less than {minutes} minutes ago"
    if withheld is not None:
        lead = open_lead(session, org_id=org_id, contact_id=contact.id)
        if lead is not None:
            add_to_timeline(
                session,
                org_id=org_id,
                lead_id=lead.id,
                kind=TimelineKind.TOUCH_SKIPPED,
                summary=f"Missed-call text-back not sent: {withheld}",
                data={"message_id": inbound.id, "reason": withheld},
            )
        return TextBackClaim(message=None, withheld=withheld)
    org = get_org(session, org_id=org_id)
    settings = org_settings(org)
    message = _system_answer(
        session,
        inbound=inbound,
        channel=Channel.SMS,
        own_number=settings.sms_from,
        body=TEXT_BACK.replace("{org_name}", org.name),
        key=key,
        mode=settings.provider_mode.value,
    )
    return TextBackClaim(message=message)


def _texted_back_since(session: Session, *, org_id: str, number: str, since: datetime) -> bool:
    """Whether a text-back to ``number`` was claimed after ``since`` (a failed one doesn't
    count: it never reached the person)."""
    found = session.exec(
        select(Message.id)
        .where(
            Message.org_id == org_id,
            Message.direction == Direction.OUTBOUND,
            Message.to_address == number,
            col(Message.idempotency_key).startswith(TEXT_BACK_KEY),
            Message.status != MessageStatus.FAILED,
            col(Message.created_at) > since,
        )
        .limit(1)
    ).first()
    return found is not None


def hold_verdict(
    session: Session, *, contact_id: str, settings: OrgSettings, now: datetime
) -> Verdict | None:
    """The takeover rule alone: held back until the hold would run out, while an operator
    holds the contact's thread (``None``: nobody does)."""
    until = held_until(session, contact_id=contact_id, settings=settings, now=now)
    return None if until is None else Verdict(until=until, reason=HELD_BACK)


def check_gate(
    session: Session,
    *,
    settings: OrgSettings,
    lead: Lead,
    contact: Contact,
    channel: Channel,
    now: datetime,
    holds: bool = True,
) -> Verdict:
    """Whether an automated touch on ``channel`` may go to the lead's contact at ``now``.

    Consent is checked separately (a refusal there is final, not a deferral). While an
    operator holds the contact's thread (a takeover), nothing automated goes: the touch
    waits until the hold would run out, and its workflow is woken sooner by a release.
    ``holds=False`` leaves takeovers out, for planning ahead: a hold's end can't be known
    in advance (the workflow pauses instead, and the send asks again).
    """
    held = (
        hold_verdict(session, contact_id=contact.id, settings=settings, now=now) if holds else None
    )
    if held is not None:
        return held
    who = recipient_of(session, lead=lead, contact=contact, settings=settings)
    zone = ZoneInfo(who.timezone)
    until, reasons = now, []
    for _ in range(
        6
    ):  # the budget, the call cap and the window can push each other on; settle them
        moved = False
        window = window_for(channel, settings, who.region)
        if window is not None:
            opens = next_open(
                until, zone=zone, window=window, weekdays_only=settings.quiet_hours.weekdays_only
            )
            if opens > until:
                until, moved = opens, True
                rule = REGION_RULES.get(who.region or "")
                why = f"quiet hours ({rule.law})" if rule else "quiet hours"
                reasons.append(why)
        touched = touches_since(session, contact_id=contact.id, since=until - BUDGET_WINDOW)
        if len(touched) >= settings.touch_budget.per_24h:
            # Free again once enough of the window's touches have aged out of it.
            frees = touched[len(touched) - settings.touch_budget.per_24h] + BUDGET_WINDOW
            if frees > until:
                until, moved = frees, True
                reasons.append(f"touch budget ({settings.touch_budget.per_24h} per 24 h)")
        if channel == Channel.VOICE:
            cap = call_cap(settings, who.region)
            called = calls_since(session, contact_id=contact.id, since=until - BUDGET_WINDOW)
            if len(called) >= cap:
                frees = called[len(called) - cap] + BUDGET_WINDOW
                if frees > until:
                    until, moved = frees, True
                    rule = REGION_RULES.get(who.region or "")
                    law = f", {rule.law}" if rule and cap == rule.calls_per_subject_per_24h else ""
                    reasons.append(f"call cap ({cap} per 24 h{law})")
        if not moved:
            break
    if until <= now:
        return Verdict()
    local = until.astimezone(zone)
    when = f"{local:%a %d %b %H:%M} {who.timezone}"
    return Verdict(until=until, reason=f"{' and '.join(dict.fromkeys(reasons))}: until {when}")
