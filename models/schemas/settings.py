"""The org settings document (quiet hours, touch budget, call policy, SLAs, scoring), how it
is patched, and the org's create and public shapes."""

from __future__ import annotations

from datetime import time, timedelta
from typing import Annotated, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    field_validator,
    model_validator,
)
from pydantic.config import JsonDict

from models.schemas.fields import (
    E164,
    ContentSid,
    Documented,
    Duration,
    Email,
    Mailbox,
    Region,
    StrictModel,
    TakeoverTimeout,
    Text,
    Timezone,
)
from models.values import (
    Channel,
    ProviderMode,
)


def _window(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    if len(value) != 2:
        raise ValueError('must be ["HH:MM", "HH:MM"]')
    try:
        start, end = (time.fromisoformat(part) for part in value)
    except ValueError:
        raise ValueError('must be ["HH:MM", "HH:MM"] in 24-hour time') from None
    if end <= start:
        raise ValueError("window end must be after its start")
    return [start.strftime("%H:%M"), end.strftime("%H:%M")]


Window = Annotated[
    list[str] | None,
    AfterValidator(_window),
    Documented(
        {
            "items": {"type": "string", "pattern": "^(?:[01][0-9]|2[0-3]):[0-5][0-9]$"},
            "minItems": 2,
            "maxItems": 2,
            "description": '["HH:MM", "HH:MM"] in 24-hour time, the end after the start; '
            "null: any time.",
        }
    ),
]


class QuietHours(StrictModel):
    """Per-channel send windows in the recipient's local time; ``None`` means any time."""

    sms: Window = ["08:00", "21:00"]
    whatsapp: Window = ["08:00", "21:00"]
    voice: Window = ["08:00", "21:00"]
    email: Window = None
    weekdays_only: bool = False


class TouchBudget(StrictModel):
    """How many touches a contact may get."""

    per_24h: int = Field(default=3, ge=1, le=50)
    calls_per_subject_per_24h: int = Field(default=3, ge=1, le=20)


class CallPolicy(StrictModel):
    """How unanswered calls are retried."""

    max_attempts: int = Field(default=4, ge=1, le=10)
    spacing: list[Duration] = Field(
        default_factory=lambda: [
            timedelta(minutes=5),
            timedelta(hours=2),
            timedelta(days=1),
            timedelta(days=2),
        ],
        min_length=1,
        max_length=10,
    )


def _distinct_reminders(offsets: list[timedelta]) -> list[timedelta]:
    if len(set(offsets)) != len(offsets):
        raise ValueError("each reminder offset may appear once")
    return sorted(offsets, reverse=True)


class AppointmentSettings(StrictModel):
    """What a booking's ``Appointment`` workflow sends, and when."""

    #: How long before the visit each reminder goes (earliest first once stored).
    reminders: Annotated[list[Duration], AfterValidator(_distinct_reminders)] = Field(
        default_factory=lambda: [timedelta(days=1), timedelta(hours=2)], max_length=5
    )
    #: The confirmation asks the customer to reply C to confirm (R to ask to reschedule).
    confirm_by_reply: bool = True
    #: How long after a visit is completed the rating request goes.
    rating_request_after: Duration = timedelta(hours=1)
    #: An arrival this long after the start still counts as on time.
    on_time_grace: Duration = timedelta(minutes=10)


#: A sender's throughput, in sends a second: from 0.001 (one every 1,000 s) to 1000.
PerSecond = Annotated[float, Field(ge=0.001, le=1000)]


class SendPacing(StrictModel):
    """How fast each of the org's senders may send, in sends a second; ``None``: as fast as
    the provider takes them. A US long code takes about 1 text a second, a toll-free number
    about 3, a short code about 100. Automated touches and calls wait their turn (hottest
    lead first); a visit's or payment's message never waits but uses up a turn; replies,
    confirmations and alerts are not paced."""

    sms: PerSecond | None = None
    whatsapp: PerSecond | None = None
    #: Per sending domain (the part of ``email_from`` after the @).
    email: PerSecond | None = None
    #: Calls placed from the Vapi phone number.
    calls: PerSecond | None = None

    def per_second(self, channel: Channel) -> float | None:
        """The pace of ``channel``'s sender (a call's: ``calls``)."""
        return {
            Channel.SMS: self.sms,
            Channel.WHATSAPP: self.whatsapp,
            Channel.EMAIL: self.email,
            Channel.VOICE: self.calls,
        }.get(channel)


class Sla(StrictModel):
    """How long an escalation may wait for a person, per priority."""

    urgent: Duration = timedelta(minutes=5)
    high: Duration = timedelta(minutes=15)
    medium: Duration = timedelta(hours=1)
    low: Duration = timedelta(hours=4)


def _https_only(url: HttpUrl) -> HttpUrl:
    if url.scheme != "https":
        raise ValueError("must be an https URL")
    return url


class AlertSettings(StrictModel):
    """Who hears about keepwarm's own health alerts, and the thresholds that are the org's
    to choose (HEALTH.md). Empty lists mean the owner's email and phone."""

    #: Addresses a notice goes to by email, first the main contact, then backups.
    email: list[Email] = Field(default_factory=list, max_length=5)
    #: Numbers a notice goes to by SMS (critical alerts, or any about email), first the main.
    sms: list[E164] = Field(default_factory=list, max_length=5)
    #: Alert texts per calendar month (UTC); past it, notices go by email instead.
    sms_per_month: int = Field(default=40, ge=0, le=1000)
    #: Leads created inside allowed hours should have their first touch within this (p90).
    speed_to_lead_target: Duration = timedelta(minutes=5)
    #: Pinged (GET) at every run of the checks, for an outside dead-man's switch
    #: (Healthchecks.io, Uptime Kuma push). ``None``: none.
    heartbeat_url: Annotated[HttpUrl, AfterValidator(_https_only)] | None = Field(
        default=None, description="Must be an https URL."
    )


class UnitPrices(StrictModel):
    """What one message costs the org on each channel, in ``currency``: the agents' cost per
    interaction (``GET /v1/agents``) prices messages with these, as Twilio's and Resend's own
    per-message prices are not recorded yet. Per message, not per SMS segment."""

    sms: float = Field(default=0.0079, ge=0, le=10, allow_inf_nan=False)
    whatsapp: float = Field(default=0.005, ge=0, le=10, allow_inf_nan=False)
    email: float = Field(default=0.0004, ge=0, le=10, allow_inf_nan=False)
    #: ISO 4217, upper case.
    currency: str = Field(default="USD", pattern="^[A-Z]{3}$")


Points = Annotated[int, Field(ge=-100, le=100)]
Phrase = Annotated[Text, Field(min_length=1, max_length=60)]
#: A dict keyed by phrases: JSON Schema files the keys' pattern under ``patternProperties``,
#: so a key that doesn't match must be refused outright.
_PHRASES_ONLY: JsonDict = {"additionalProperties": False}


class ValueTier(StrictModel):
    """Points for a lead whose value (or cart value) is at least ``min``."""

    min: float = Field(ge=0)
    points: Points


class IntentThresholds(StrictModel):
    """The lowest score of each intent; below ``window_shopper`` a lead is ``browsing``."""

    high_value: int = Field(default=70, ge=0, le=100)
    engaged: int = Field(default=45, ge=0, le=100)
    window_shopper: int = Field(default=20, ge=0, le=100)

    @model_validator(mode="after")
    def _descending(self) -> IntentThresholds:
        if not self.high_value > self.engaged > self.window_shopper:
            raise ValueError("thresholds must fall: high_value > engaged > window_shopper")
        return self


class ScoringRules(StrictModel):
    """How a lead is scored 0-100 and given an intent; every rule that fires is a reason."""

    base: Points = 10
    #: The highest tier the value reaches counts.
    value_tiers: list[ValueTier] = Field(
        default_factory=lambda: [
            ValueTier(min=1000, points=40),
            ValueTier(min=250, points=25),
            ValueTier(min=50, points=10),
        ],
        max_length=20,
    )
    #: Points by source (lower-case), e.g. a referral is worth more than a browse.
    sources: dict[Phrase, Points] = Field(
        default_factory=lambda: {"referral": 20, "phone": 15, "website_form": 10, "cart": 5},
        max_length=100,
        json_schema_extra=_PHRASES_ONLY,
    )
    #: Points for words or phrases in the message (whole words, any case), each once.
    words: dict[Phrase, Points] = Field(
        default_factory=lambda: {
            "urgent": 20,
            "asap": 20,
            "today": 10,
            "quote": 10,
            "book": 10,
            "price": 5,
            "just looking": -15,
            "browsing": -15,
            # "Please cancel my booking" is not a request for one.
            "cancel": -20,
        },
        max_length=200,
        json_schema_extra=_PHRASES_ONLY,
    )
    #: Points when the person converted before (a returning customer).
    returning_customer: Points = 15
    thresholds: IntentThresholds = Field(default_factory=IntentThresholds)
    #: Words of an explicit request (whole words, any case): a message asking for one is at
    #: least ``engaged``, so it gets a text first where it may (the warmest lead a service
    #: business gets, and the one that most needs contact within minutes).
    requests: list[Phrase] = Field(
        default_factory=lambda: [
            "quote",
            "estimate",
            "book",
            "booking",
            "appointment",
            "price",
            "pricing",
            "availability",
        ],
        max_length=50,
        json_schema_extra={"uniqueItems": True},
    )

    @field_validator("requests")
    @classmethod
    def _requests_once(cls, values: list[str]) -> list[str]:
        folded = [" ".join(value.lower().split()) for value in values]
        if len(set(folded)) != len(folded):
            raise ValueError("list each request once")
        return values


class OrgSettings(StrictModel):
    """An org's settings as ``GET /v1/orgs/me`` returns them (no secrets live here)."""

    timezone: Timezone = "UTC"
    default_region: Region = "US"
    provider_mode: ProviderMode = ProviderMode.DRY_RUN
    sms_from: E164 | None = None
    whatsapp_from: E164 | None = None
    email_from: Mailbox | None = None
    vapi_assistant_id: Text | None = Field(default=None, max_length=100)
    vapi_phone_number_id: Text | None = Field(default=None, max_length=100)
    #: Sent instead of free text outside WhatsApp's 24-hour session; none: such sends fail.
    whatsapp_template_sid: ContentSid | None = None
    quiet_hours: QuietHours = Field(default_factory=QuietHours)
    touch_budget: TouchBudget = Field(default_factory=TouchBudget)
    inactivity_threshold: Duration = timedelta(days=2)
    call_policy: CallPolicy = Field(default_factory=CallPolicy)
    sla: Sla = Field(default_factory=Sla)
    #: A takeover ends on its own after this long without a message from its operator.
    takeover_timeout: TakeoverTimeout = timedelta(minutes=30)
    #: A contact whose value (lifetime, or their open lead's) reaches this gets a person:
    #: their messages open an escalation. ``None``: no VIP rule.
    vip_value: float | None = Field(default=1000.0, gt=0)
    help_reply: Text | None = Field(default=None, max_length=320)
    scoring: ScoringRules = Field(default_factory=ScoringRules)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    unit_prices: UnitPrices = Field(default_factory=UnitPrices)
    appointments: AppointmentSettings = Field(default_factory=AppointmentSettings)
    pacing: SendPacing = Field(default_factory=SendPacing)


def _null_only_where_settings_allow(schema: JsonDict) -> None:
    """A setting that can't be empty can't be patched to null either: say so."""
    properties = schema.get("properties")
    assert isinstance(properties, dict)
    for name, field in properties.items():
        setting = OrgSettings.model_fields[name].annotation
        if type(None) in get_args(setting) or not isinstance(field, dict):
            continue
        field.pop("default", None)
        branches = field.pop("anyOf", None)
        if isinstance(branches, list):
            kept = [branch for branch in branches if branch != {"type": "null"}]
            if len(kept) == 1 and isinstance(kept[0], dict):
                field.update(kept[0])
            else:
                field["anyOf"] = kept


class OrgSettingsPatch(StrictModel):
    """``PATCH /v1/orgs/me``: any subset of the settings; absent fields keep their value."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_null_only_where_settings_allow)

    timezone: Timezone | None = None
    default_region: Region | None = None
    provider_mode: ProviderMode | None = None
    sms_from: E164 | None = None
    whatsapp_from: E164 | None = None
    email_from: Mailbox | None = None
    vapi_assistant_id: Text | None = Field(default=None, max_length=100)
    vapi_phone_number_id: Text | None = Field(default=None, max_length=100)
    whatsapp_template_sid: ContentSid | None = None
    quiet_hours: QuietHours | None = None
    touch_budget: TouchBudget | None = None
    inactivity_threshold: Duration | None = None
    call_policy: CallPolicy | None = None
    sla: Sla | None = None
    takeover_timeout: TakeoverTimeout | None = None
    vip_value: float | None = Field(default=None, gt=0)
    help_reply: Text | None = Field(default=None, max_length=320)
    scoring: ScoringRules | None = None
    alerts: AlertSettings | None = None
    unit_prices: UnitPrices | None = None
    appointments: AppointmentSettings | None = None
    pacing: SendPacing | None = None


class OrgCreate(StrictModel):
    """``POST /v1/orgs``."""

    name: Text = Field(min_length=1, max_length=200)
    timezone: Timezone
    default_region: Region | None = None
    quiet_hours: QuietHours | None = None


class OrgCreated(BaseModel):
    """The new org; ``api_key`` is shown this once."""

    id: str
    name: str
    api_key: str


class OrgPublic(OrgSettings):
    """``GET /v1/orgs/me``."""

    model_config = ConfigDict(extra="ignore")

    id: str
    name: str
