"""The compliance gate: may this touch go to this person now, and if not, when?

One gate for every outbound touch keepwarm sends on its own (first touches, sequence steps):
consent for the channel, quiet hours in the recipient's local time (the org's windows, made
stricter by the recipient's region), and a touch budget per contact across every channel and
workflow, and a per-subject cap on calls (the org's, lowered by the region's rule). The send
and call activities ask it inside the transaction that claims the message, so it is
the authority; a deferred touch waits on a durable timer in its workflow and is asked again.
While an operator holds the contact's thread (``models.takeover``), it holds every automated
touch back. Confirmations of STOP, START and HELP don't pass it; messages a person writes
pass its consent and quiet-hours checks (``models.replies``) but don't count against the
budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import geocoder
from phonenumbers import timezone as phone_zones
from sqlmodel import Session, col, select

from models import takeover
from models.schemas import OrgSettings
from models.tables import Call, Contact, Identity, Lead, Message
from models.values import CallStatus, Channel, Direction, IdentityKind, MessageStatus, Sender

#: Rolling window of the touch budget.
BUDGET_WINDOW = timedelta(hours=24)
#: A message that failed did not reach the person, so it doesn't use up the budget.
NOT_TOUCHED = (MessageStatus.FAILED.value,)


@dataclass(frozen=True, kw_only=True)
class RegionRule:
    """A region's stricter calling and texting rules."""

    window: tuple[str, str]
    calls_per_subject_per_24h: int | None = None
    law: str


#: Regions whose rules are stricter than the usual 08:00-21:00: US state telemarketing laws
#: (calls and texts 08:00-20:00 local, three calls per subject per 24 hours).
REGION_RULES: dict[str, RegionRule] = {
    "US-FL": RegionRule(
        window=("08:00", "20:00"),
        calls_per_subject_per_24h=3,
        law="Florida Telephone Solicitation Act",
    ),
    "US-OK": RegionRule(
        window=("08:00", "20:00"),
        calls_per_subject_per_24h=3,
        law="Oklahoma Telephone Solicitation Act",
    ),
    "US-MD": RegionRule(
        window=("08:00", "20:00"),
        calls_per_subject_per_24h=3,
        law="Maryland Stop the Spam Calls Act",
    ),
}
#: How the phone-number geocoder names the states above.
_STATES = {"Florida": "FL", "Oklahoma": "OK", "Maryland": "MD"}
#: Channels the quiet hours apply to, by the org's ``quiet_hours`` field.
_WINDOW_FIELDS = {
    Channel.SMS: "sms",
    Channel.WHATSAPP: "whatsapp",
    Channel.VOICE: "voice",
    Channel.EMAIL: "email",
}


@dataclass(frozen=True, kw_only=True)
class Recipient:
    """Where the person is, as far as the gate can tell."""

    timezone: str
    #: ``US-FL`` style, where a rule applies; else the country (``GB``) or ``None``.
    region: str | None


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """The gate's answer: send now, or wait until ``until`` (``reason`` says why, in words)."""

    until: datetime | None = None
    reason: str | None = None

    @property
    def allowed(self) -> bool:
        """Whether the touch may go now."""
        return self.until is None


def recipient(*, phone: str | None, explicit: str | None, org_timezone: str) -> Recipient:
    """The recipient's timezone (explicit, else the phone number's, else the org's) and
    region (from the phone number)."""
    region = None
    zone = explicit
    if phone:
        try:
            number = phonenumbers.parse(phone)
        except phonenumbers.NumberParseException:
            number = None
        if number is not None:
            country = phonenumbers.region_code_for_number(number)
            region = country
            if country == "US":
                state = _state(geocoder.description_for_number(number, "en"))
                if state is not None:
                    region = f"US-{state}"
            if zone is None:
                zones = [z for z in phone_zones.time_zones_for_number(number) if z != "Etc/Unknown"]
                if org_timezone in zones:
                    zone = org_timezone
                elif zones:
                    zone = zones[0]
    return Recipient(timezone=zone or org_timezone, region=region)


def _state(place: str) -> str | None:
    """The state code of a US place as the geocoder names it ("Florida", "Miami, FL")."""
    if place in _STATES:
        return _STATES[place]
    code = place.rsplit(", ", 1)[-1] if ", " in place else ""
    return code if f"US-{code}" in REGION_RULES else None


def window_for(
    channel: Channel, settings: OrgSettings, region: str | None
) -> tuple[time, time] | None:
    """The send window for ``channel``: the org's, narrowed by the region's rule."""
    configured = getattr(settings.quiet_hours, _WINDOW_FIELDS[channel])
    if configured is None:
        return None
    start, end = (time.fromisoformat(part) for part in configured)
    rule = REGION_RULES.get(region or "")
    if rule is not None and channel != Channel.EMAIL:
        start = max(start, time.fromisoformat(rule.window[0]))
        end = min(end, time.fromisoformat(rule.window[1]))
    return start, end


def next_open(
    now: datetime, *, zone: ZoneInfo, window: tuple[time, time], weekdays_only: bool
) -> datetime:
    """``now`` if it is inside the window, else the window's next opening, in UTC.

    Worked out on the local calendar, so it is right across DST changes.
    """
    start, end = window
    local = now.astimezone(zone)
    day: date = local.date()
    for _ in range(8):
        opens = datetime.combine(day, start, zone)
        closes = datetime.combine(day, end, zone)
        workday = not weekdays_only or day.weekday() < 5
        if workday and local < closes:
            return now if local >= opens else opens.astimezone(UTC)
        day += timedelta(days=1)
    raise AssertionError("a window that never opens")  # unreachable: windows are validated


def touches_since(session: Session, *, contact_id: str, since: datetime) -> list[datetime]:
    """When the contact was touched (automated messages that went out, and calls), oldest
    first."""
    messages = session.exec(
        select(Message.touched_at)
        .join(Lead, col(Lead.id) == col(Message.lead_id))
        .where(
            Lead.contact_id == contact_id,
            Message.direction == Direction.OUTBOUND.value,
            Message.sender == Sender.AI.value,
            col(Message.status).not_in(NOT_TOUCHED),
            col(Message.touched_at) > since,
        )
    )
    return sorted(
        [
            *(m for m in messages if m is not None),
            *calls_since(session, contact_id=contact_id, since=since),
        ]
    )


def calls_since(session: Session, *, contact_id: str, since: datetime) -> list[datetime]:
    """When the contact was called (calls the gate let through that did not fail to start),
    oldest first: what the per-subject call cap counts."""
    rows = session.exec(
        select(Call.touched_at)
        .join(Lead, col(Lead.id) == col(Call.lead_id))
        .where(
            Lead.contact_id == contact_id,
            col(Call.status) != CallStatus.FAILED.value,
            col(Call.touched_at) > since,
        )
        .order_by(col(Call.touched_at))
    )
    return [moment for moment in rows if moment is not None]


def call_cap(settings: OrgSettings, region: str | None) -> int:
    """Calls per subject per rolling 24 h: the org's cap, lowered by the region's rule."""
    cap = settings.touch_budget.calls_per_subject_per_24h
    rule = REGION_RULES.get(region or "")
    if rule is not None and rule.calls_per_subject_per_24h is not None:
        cap = min(cap, rule.calls_per_subject_per_24h)
    return cap


def recipient_of(
    session: Session, *, lead: Lead | None, contact: Contact, settings: OrgSettings
) -> Recipient:
    """The lead's recipient (a contact's, without a lead): the one place keepwarm decides
    whose clock a lead runs on."""
    phone = session.exec(
        select(Identity.value)
        .where(Identity.contact_id == contact.id, Identity.kind == IdentityKind.PHONE)
        .order_by(col(Identity.created_at).desc(), col(Identity.id).desc())
    ).first()
    explicit = (lead.timezone if lead is not None else None) or contact.timezone
    return recipient(phone=phone, explicit=explicit, org_timezone=settings.timezone)


def hold_verdict(
    session: Session, *, contact_id: str, settings: OrgSettings, now: datetime
) -> Verdict | None:
    """The takeover rule alone: held back until the hold would run out, while an operator
    holds the contact's thread (``None``: nobody does)."""
    until = takeover.held_until(session, contact_id=contact_id, settings=settings, now=now)
    return None if until is None else Verdict(until=until, reason=takeover.HELD_BACK)


def check(
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
