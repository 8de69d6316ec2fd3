"""The compliance gate at the moment a touch or call is claimed: a takeover's hold, quiet
hours in the recipient's local time, the touch budget and the per-subject call cap, asked
in turn until they agree on the first moment the touch may go."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

from models.rules.compliance import (
    BUDGET_WINDOW,
    REGION_RULES,
    Deferred,
    Recipient,
    Verdict,
    call_cap,
    next_open,
    window_for,
)
from models.rules.takeover import HELD_BACK
from models.schemas import (
    OrgSettings,
)
from models.store.calls import calls_since, touches_since
from models.store.contacts import recipient_of
from models.store.holds import held_until
from models.store.leads import get_lead
from models.store.messages import note_deferral
from models.store.orgs import get_org, settings_of
from models.tables import (
    Contact,
    Lead,
)
from models.values import (
    Channel,
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
        session,
        settings=settings_of(session, org),
        lead=lead,
        contact=contact,
        channel=channel,
        now=now,
    )
    if not verdict.allowed:
        note_deferral(session, org_id=org_id, lead_id=lead_id, channel=channel, verdict=verdict)
    return verdict


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
    budget: bool = True,
) -> Verdict:
    """Whether an automated touch on ``channel`` may go to the lead's contact at ``now``.

    Consent is checked separately (a refusal there is final, not a deferral). While an
    operator holds the contact's thread (a takeover), nothing automated goes: the touch
    waits until the hold would run out, and its workflow is woken sooner by a release.
    ``holds=False`` leaves takeovers out, for planning ahead: a hold's end can't be known
    in advance (the workflow pauses instead, and the send asks again). ``budget=False``
    leaves the touch budget out: a transactional message (a visit's confirmation or
    reminder) answers something the customer asked for, and passes quiet hours only.
    """
    held = (
        hold_verdict(session, contact_id=contact.id, settings=settings, now=now) if holds else None
    )
    if held is not None:
        return held
    who = recipient_of(session, lead=lead, contact=contact, settings=settings)
    zone = ZoneInfo(who.timezone)
    until, reasons = now, []
    # The budget, the call cap and the window can push each other on: settle them.
    for _ in range(6):
        moved = False
        for rule in (_quiet_hours, _touch_budget, _call_cap) if budget else (_quiet_hours,):
            pushed = rule(
                session,
                settings=settings,
                who=who,
                contact_id=contact.id,
                channel=channel,
                until=until,
            )
            if pushed is not None:
                until, why = pushed
                moved = True
                reasons.append(why)
        if not moved:
            break
    if until <= now:
        return Verdict()
    local = until.astimezone(zone)
    when = f"{local:%a %d %b %H:%M} {who.timezone}"
    return Verdict(until=until, reason=f"{' and '.join(dict.fromkeys(reasons))}: until {when}")


def _quiet_hours(
    session: Session,
    *,
    settings: OrgSettings,
    who: Recipient,
    contact_id: str,
    channel: Channel,
    until: datetime,
) -> tuple[datetime, str] | None:
    """When the channel's send window next opens in the recipient's time, if later."""
    window = window_for(channel, settings, who.region)
    if window is None:
        return None
    opens = next_open(
        until,
        zone=ZoneInfo(who.timezone),
        window=window,
        weekdays_only=settings.quiet_hours.weekdays_only,
    )
    if opens <= until:
        return None
    rule = REGION_RULES.get(who.region or "")
    return opens, f"quiet hours ({rule.law})" if rule else "quiet hours"


def _touch_budget(
    session: Session,
    *,
    settings: OrgSettings,
    who: Recipient,
    contact_id: str,
    channel: Channel,
    until: datetime,
) -> tuple[datetime, str] | None:
    """When the contact's touch budget frees a touch again, if later."""
    touched = touches_since(session, contact_id=contact_id, since=until - BUDGET_WINDOW)
    if len(touched) < settings.touch_budget.per_24h:
        return None
    # Free again once enough of the window's touches have aged out of it.
    frees = touched[len(touched) - settings.touch_budget.per_24h] + BUDGET_WINDOW
    if frees <= until:
        return None
    return frees, f"touch budget ({settings.touch_budget.per_24h} per 24 h)"


def _call_cap(
    session: Session,
    *,
    settings: OrgSettings,
    who: Recipient,
    contact_id: str,
    channel: Channel,
    until: datetime,
) -> tuple[datetime, str] | None:
    """When the call cap frees a call to the contact again, if later (calls only)."""
    if channel != Channel.VOICE:
        return None
    cap = call_cap(settings, who.region)
    called = calls_since(session, contact_id=contact_id, since=until - BUDGET_WINDOW)
    if len(called) < cap:
        return None
    frees = called[len(called) - cap] + BUDGET_WINDOW
    if frees <= until:
        return None
    rule = REGION_RULES.get(who.region or "")
    law = f", {rule.law}" if rule and cap == rule.calls_per_subject_per_24h else ""
    return frees, f"call cap ({cap} per 24 h{law})"
