"""The compliance gate's rules: whose clock a recipient runs on, the send windows per channel
and region, when a window next opens, the per-subject call cap, and the verdict a held-back
touch carries. Pure: the data it needs comes in as arguments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import geocoder
from phonenumbers import timezone as phone_zones

from models.rules.pacing import Queued
from models.schemas import (
    OrgSettings,
)
from models.values import (
    Channel,
)


class Deferred(Exception):
    """The compliance gate holds this touch back until ``verdict.until``."""

    def __init__(
        self, verdict: Verdict, *, channel: Channel | None = None, queued: Queued | None = None
    ) -> None:
        super().__init__(verdict.reason)
        self.verdict = verdict
        #: The channel the held touch was claimed on, when it is not the one asked for (a
        #: sequence step's fallback).
        self.channel = channel
        #: Held by its sender's pace: its place in the sender's queue, to be kept.
        self.queued = queued


#: Rolling window of the touch budget.
BUDGET_WINDOW = timedelta(hours=24)


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


def call_cap(settings: OrgSettings, region: str | None) -> int:
    """Calls per subject per rolling 24 h: the org's cap, lowered by the region's rule."""
    cap = settings.touch_budget.calls_per_subject_per_24h
    rule = REGION_RULES.get(region or "")
    if rule is not None and rule.calls_per_subject_per_24h is not None:
        cap = min(cap, rule.calls_per_subject_per_24h)
    return cap
