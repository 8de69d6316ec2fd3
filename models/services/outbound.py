"""Every automated send is claimed here, once per key, through the compliance gate: consent,
the touch budget, quiet hours, the call cap and a takeover's hold; plus keepwarm's own
answers (keyword confirmations, the missed-call text-back)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from models.database import lock
from models.errors import NotFound
from models.rules.compliance import (
    Deferred,
)
from models.rules.messages import (
    SUBJECTS,
    TEMPLATES,
    sender_address,
)
from models.rules.whatsapp import (
    _TEMPLATE_VARIABLE_MAX,
    WHATSAPP_NO_TEMPLATE,
    WHATSAPP_TEMPLATE_MARK,
)
from models.schemas import (
    OrgSettings,
)
from models.services.gate import check_gate, held_back_for_takeover
from models.services.pacing import take_slot
from models.store.consent import current_consent
from models.store.contacts import address_for, recipient_of
from models.store.leads import get_lead, set_stage
from models.store.messages import (
    mark_message_failed,
    mark_message_sent,
    whatsapp_session_open,
)
from models.store.orgs import get_org, settings_of
from models.store.threads import thread_of_contact, touch_thread
from models.store.timeline import add_to_timeline_once
from models.tables import (
    Contact,
    Lead,
    Message,
    Org,
    utcnow,
)
from models.tokens import unsubscribe_token
from models.values import (
    Channel,
    Direction,
    MessageStatus,
    Sender,
    Stage,
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


@dataclass(frozen=True, kw_only=True)
class StepTag:
    """A sequence step's touch: which sequence, which step (from 1), which variant."""

    sequence: str
    step: int
    variant: str | None = None
    #: The experiment's version (``rules.experiments.experiment_key``).
    experiment: str | None = None


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
    transactional: bool = False,
    tag: StepTag | None = None,
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
    lead = get_lead(session, org_id=org_id, lead_id=lead_id)
    # Locked: two workflows claiming touches for one person count the budget one at a time.
    contact = lock(session, Contact, lead.contact_id)
    assert contact is not None
    return _claim(
        session,
        lead=lead,
        contact=contact,
        consent=current_consent(session, org_id=org_id, contact_id=contact.id),
        existing=_by_key(session, idempotency_key),
        channel=channel,
        idempotency_key=idempotency_key,
        template=template,
        text=text,
        now=now,
        transactional=transactional,
        tag=tag,
    )


def _by_key(session: Session, idempotency_key: str) -> Message | None:
    """The message already claimed under ``idempotency_key``, if any."""
    return session.exec(select(Message).where(Message.idempotency_key == idempotency_key)).first()


def _claim(
    session: Session,
    *,
    lead: Lead,
    contact: Contact,
    consent: dict[str, bool | None],
    existing: Message | None,
    channel: Channel,
    idempotency_key: str,
    template: str,
    text: str | None,
    now: datetime | None,
    transactional: bool,
    tag: StepTag | None,
) -> OutboundClaim:
    """``claim_outbound_message`` once the lead, its locked contact, the contact's consent
    and the row already under the key (if any) have been read."""
    org = get_org(session, org_id=lead.org_id)
    governing = consent_channel(channel)
    if existing is not None:
        _check_claimed(session, org=org, contact_id=contact.id, existing=existing, now=now)
        message, subject = existing, existing.subject
    else:
        draft = _draft_touch(
            session,
            org=org,
            lead=lead,
            contact=contact,
            channel=channel,
            consent=consent[governing],
            template=template,
            text=text,
            idempotency_key=idempotency_key,
            now=now,
            transactional=transactional,
            tag=tag,
        )
        message, subject = _write_touch(session, draft=draft), draft.subject
    return OutboundClaim(
        message=message,
        contact_id=contact.id,
        subject=subject,
        consent=consent[governing],
        unsubscribe_token=_unsubscribe_token(org, contact_id=contact.id, channel=channel),
    )


@dataclass(frozen=True, kw_only=True)
class StepClaim:
    """A sequence step's touch claimed (``claim``), or why it is skipped (``skipped``)."""

    claim: OutboundClaim | None = None
    skipped: str | None = None


def claim_step_touch(
    session: Session,
    *,
    org_id: str,
    lead_id: str,
    channel: Channel,
    fallback: tuple[Channel, ...],
    idempotency_key: str,
    text: str,
    tag: StepTag,
    now: datetime | None = None,
) -> StepClaim:
    """A sequence step's touch, on the first of ``channel`` and its ``fallback`` the person
    can be reached on (consent not withdrawn, an address to send to).

    When none is left the step is skipped: no message row (it would only fail), one
    ``touch_skipped`` note on the lead's timeline saying why. A touch claimed before (under
    ``idempotency_key``) keeps its channel, whatever has changed since.
    """
    lead = get_lead(session, org_id=org_id, lead_id=lead_id)
    # Locked as the claim locks it: the consent read here is the one the claim relies on.
    contact = lock(session, Contact, lead.contact_id)
    assert contact is not None
    consent = current_consent(session, org_id=org_id, contact_id=contact.id)
    existing = _by_key(session, idempotency_key)
    chosen: Channel | None = Channel(existing.channel) if existing is not None else None
    if chosen is None:
        chosen, unreachable = reachable_channel(
            session,
            org_id=org_id,
            contact_id=contact.id,
            channels=(channel, *fallback),
            consent=consent,
        )
        if chosen is None:
            reason = "; ".join(unreachable)
            _note_skipped_step(session, lead=lead, tag=tag, key=idempotency_key, reason=reason)
            return StepClaim(skipped=reason)
    try:
        claim = _claim(
            session,
            lead=lead,
            contact=contact,
            consent=consent,
            existing=existing,
            channel=chosen,
            idempotency_key=idempotency_key,
            template="sequence",
            text=text,
            now=now,
            transactional=False,
            tag=tag,
        )
    except Deferred as held:
        raise Deferred(held.verdict, channel=chosen, queued=held.queued) from None
    return StepClaim(claim=claim)


def reachable_channel(
    session: Session,
    *,
    org_id: str,
    contact_id: str,
    channels: tuple[Channel, ...],
    consent: dict[str, bool | None] | None = None,
) -> tuple[Channel | None, list[str]]:
    """The first of ``channels`` the person can be reached on (consent not withdrawn, an
    address to send to), and why each one before it could not; ``consent`` if the caller
    has read it already."""
    if consent is None:
        consent = current_consent(session, org_id=org_id, contact_id=contact_id)
    unreachable: list[str] = []
    for candidate in channels:
        if consent[consent_channel(candidate)] is False:
            unreachable.append(f"{candidate.value} withdrawn")
        elif not address_for(session, org_id=org_id, contact_id=contact_id, channel=candidate):
            unreachable.append(f"no {candidate.value} address")
        else:
            return candidate, unreachable
    return None, unreachable


def _note_skipped_step(
    session: Session, *, lead: Lead, tag: StepTag, key: str, reason: str
) -> None:
    """One ``touch_skipped`` note per step (a retried skip finds it)."""
    add_to_timeline_once(
        session,
        org_id=lead.org_id,
        lead_id=lead.id,
        kind=TimelineKind.TOUCH_SKIPPED,
        summary=f"Step {tag.step} of {tag.sequence} skipped: {reason}",
        data={"sequence": tag.sequence, "step": tag.step, "reason": reason},
        key={"idempotency_key": key},
    )


def transactional_channel(session: Session, *, org_id: str, contact_id: str) -> Channel | None:
    """Where a transactional message (a visit's, a payment's) goes: SMS to a dialable number,
    else email; never a channel the customer withdrew (``None``: none left)."""
    consent = current_consent(session, org_id=org_id, contact_id=contact_id)
    for channel in (Channel.SMS, Channel.EMAIL):
        if consent[consent_channel(channel)] is False:
            continue
        if address_for(session, org_id=org_id, contact_id=contact_id, channel=channel):
            return channel
    return None


@dataclass(frozen=True, kw_only=True)
class TransactionalClaim:
    """A transactional message claimed (``claim``, ``new`` unless claimed before under its
    key), or why it is not sent (``skipped``)."""

    claim: OutboundClaim | None = None
    channel: Channel | None = None
    skipped: str | None = None
    new: bool = False


def claim_transactional(
    session: Session,
    *,
    org_id: str,
    lead_id: str,
    contact_id: str,
    idempotency_key: str,
    template: str,
    why_not: str | None,
    words: Callable[[ZoneInfo], str],
    now: datetime,
) -> TransactionalClaim:
    """Claim a transactional message (a visit's, a payment's): consent and quiet hours, not
    the touch budget (``claim_outbound_message(transactional=True)``), on the customer's
    ``transactional_channel``, with ``words`` in their time zone.

    ``why_not`` is why it no longer fits what it is about (``None``: it does). It is asked of
    a new message, and again of one claimed before but never handed to a provider (a crash,
    an outage): that one is then closed unsent, never sent late. One that may have reached
    the provider is returned to be reconciled. ``Deferred`` while quiet hours hold it back.
    """
    existing = _by_key(session, idempotency_key)
    channel = (
        Channel(existing.channel)
        if existing is not None
        else transactional_channel(session, org_id=org_id, contact_id=contact_id)
    )
    unsent = (
        existing is not None
        and existing.status == MessageStatus.PENDING
        and existing.attempted_at is None
    )
    if existing is None or unsent:
        why = why_not or (None if channel is not None else "no channel the customer allows")
        if why is not None:
            if existing is not None:
                mark_message_failed(session, message_id=existing.id, error=f"not sent: {why}")
            return TransactionalClaim(skipped=why)
    assert channel is not None
    org = get_org(session, org_id=org_id)
    contact = session.get(Contact, contact_id)
    assert contact is not None
    lead = session.get(Lead, lead_id)
    who = recipient_of(session, lead=lead, contact=contact, settings=settings_of(session, org))
    claim = claim_outbound_message(
        session,
        org_id=org_id,
        lead_id=lead_id,
        channel=channel,
        idempotency_key=idempotency_key,
        template=template,
        text=words(ZoneInfo(who.timezone)),
        now=now,
        transactional=True,
    )
    return TransactionalClaim(claim=claim, channel=channel, new=existing is None)


def _unsubscribe_token(org: Org, *, contact_id: str, channel: Channel) -> str | None:
    """The token signing an email's one-click unsubscribe link (``None``: not an email)."""
    return (
        unsubscribe_token(
            secret=org.id_secret, org_id=org.id, contact_id=contact_id, channel=channel.value
        )
        if channel == Channel.EMAIL
        else None
    )


def _check_claimed(
    session: Session, *, org: Org, contact_id: str, existing: Message, now: datetime | None
) -> None:
    """A row already claimed under the key is the org's own; ``Deferred`` while a takeover
    holds one that has not reached the provider."""
    if existing.org_id != org.id:
        raise NotFound(str(existing.idempotency_key))
    if (
        existing.attempted_at is None
        and existing.status == MessageStatus.PENDING
        and existing.sender == Sender.AI
    ):
        # Claimed before a takeover and retried during it (a provider outage, a crash):
        # it has not reached the provider, so it waits for the release like a new touch.
        held_back_for_takeover(
            session, settings=settings_of(session, org), contact_id=contact_id, now=now or utcnow()
        )


@dataclass(frozen=True, kw_only=True)
class _TouchDraft:
    """A new touch's row as decided, before it is written."""

    org_id: str
    lead_id: str
    thread_id: str | None
    channel: Channel
    to_address: str | None
    from_address: str | None
    body: str
    subject: str | None
    mode: str
    idempotency_key: str
    touched_at: datetime
    #: The AI's touch, or the system's transactional message.
    sender: Sender
    #: Why the row is written already failed (WhatsApp without a template), if it is.
    refusal: str | None
    tag: StepTag | None = None


def _draft_touch(
    session: Session,
    *,
    org: Org,
    lead: Lead,
    contact: Contact,
    channel: Channel,
    consent: bool | None,
    template: str,
    text: str | None,
    idempotency_key: str,
    now: datetime | None,
    transactional: bool = False,
    tag: StepTag | None = None,
) -> _TouchDraft:
    """The new touch's row, once the gate lets it go now (else ``Deferred``)."""
    settings = settings_of(session, org)
    thread_id = thread_of_contact(session, contact_id=contact.id)
    to_address = address_for(session, org_id=org.id, contact_id=contact.id, channel=channel)
    now = now or utcnow()
    # Only a touch that could go out is judged: an opt-out or a missing number fails anyway.
    judged = consent is not False and bool(to_address)
    if judged:
        verdict = check_gate(
            session,
            settings=settings,
            lead=lead,
            contact=contact,
            channel=channel,
            now=now,
            holds=not transactional,
            budget=not transactional,
        )
        if not verdict.allowed:
            raise Deferred(verdict)
        take_slot(
            session,
            settings=settings,
            org_id=org.id,
            channel=channel,
            key=idempotency_key,
            priority=lead.score,
            now=now,
            wait=not transactional,
        )
    first_name, body, subject = _touch_words(
        org, contact=contact, channel=channel, template=template, text=text
    )
    refusal = None
    if (
        channel == Channel.WHATSAPP
        and judged
        and not whatsapp_session_open(session, org_id=org.id, contact_id=contact.id, now=now)
    ):
        body, subject, refusal = _whatsapp_form(
            settings, first_name=first_name, body=body, subject=subject
        )
    return _TouchDraft(
        org_id=org.id,
        lead_id=lead.id,
        thread_id=thread_id,
        channel=channel,
        to_address=to_address,
        from_address=sender_address(settings, channel),
        body=body,
        subject=subject,
        mode=settings.provider_mode.value,
        idempotency_key=idempotency_key,
        touched_at=now,
        sender=Sender.SYSTEM if transactional else Sender.AI,
        refusal=refusal,
        tag=tag,
    )


def _touch_words(
    org: Org, *, contact: Contact, channel: Channel, template: str, text: str | None
) -> tuple[str, str, str | None]:
    """The contact's first name, and the touch's body and (email only) subject, filled in."""
    first_name = ((contact.name or "").split() or ["there"])[0]
    fields = {"first_name": first_name, "name": contact.name or "there", "org_name": org.name}
    body = (text or TEMPLATES[template]).format_map(fields)
    subject_template = SUBJECTS.get(template, "A note from {org_name}")
    subject = subject_template.format_map(fields) if channel == Channel.EMAIL else None
    return first_name, body, subject


def _whatsapp_form(
    settings: OrgSettings, *, first_name: str, body: str, subject: str | None
) -> tuple[str, str | None, str | None]:
    """The body, subject and refusal of a WhatsApp touch outside the 24 h session: the
    org's template, else refused (``WHATSAPP_NO_TEMPLATE``)."""
    content_sid = settings.whatsapp_template_sid
    if content_sid is None:
        return body, subject, WHATSAPP_NO_TEMPLATE
    variables = json.dumps({"1": first_name[:_TEMPLATE_VARIABLE_MAX]}, ensure_ascii=False)
    # Twilio renders the template; the row keeps the text it stands in for.
    return (
        f"[WhatsApp template {content_sid}] {body}",
        f"{WHATSAPP_TEMPLATE_MARK}{content_sid} {variables}",
        None,
    )


def _write_touch(session: Session, *, draft: _TouchDraft) -> Message:
    """The new touch's row, written ``pending`` (and failed at once if the draft is refused)."""
    message = Message(
        id=new_id("msg"),
        org_id=draft.org_id,
        lead_id=draft.lead_id,
        thread_id=draft.thread_id,
        channel=draft.channel,
        direction=Direction.OUTBOUND,
        sender=draft.sender,
        to_address=draft.to_address,
        from_address=draft.from_address,
        body=draft.body,
        subject=draft.subject,
        status=MessageStatus.PENDING,
        idempotency_key=draft.idempotency_key,
        mode=draft.mode,
        touched_at=draft.touched_at,
        sequence=draft.tag.sequence if draft.tag else None,
        step=draft.tag.step if draft.tag else None,
        variant=draft.tag.variant if draft.tag else None,
        experiment=draft.tag.experiment if draft.tag else None,
    )
    session.add(message)
    session.flush()
    touch_thread(session, message=message)
    if draft.refusal is not None:
        mark_message_failed(session, message_id=message.id, error=draft.refusal)
    return message


def accept_touch(
    session: Session,
    *,
    message_id: str,
    status: MessageStatus,
    provider_message_id: str | None,
    stage: Stage,
    reason: str,
) -> Message:
    """A lead's touch left the building and the lead moves to ``stage`` (``reason`` on its
    timeline), in one transaction: a first touch's send and the lead's "contacted" were two.
    Idempotent like both. The message is locked before the lead, as recording any send and
    a delivery report do: the other order would wait on a report that waits on this."""
    message = mark_message_sent(
        session, message_id=message_id, status=status, provider_message_id=provider_message_id
    )
    if message.lead_id is None:
        raise NotFound(message_id)
    set_stage(session, org_id=message.org_id, lead_id=message.lead_id, stage=stage, reason=reason)
    return message
