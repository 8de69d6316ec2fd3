"""HTTP request and response models (API.md), and the org settings document."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from email.utils import parseaddr
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    GetJsonSchemaHandler,
    Strict,
    StrictBool,
    TypeAdapter,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.config import JsonDict
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema
from typing_extensions import TypeAliasType

from models.values import (
    CallOutcome,
    CallStatus,
    Channel,
    Direction,
    HandledBy,
    Intent,
    MessageStatus,
    OperatorRole,
    Priority,
    ProviderMode,
    Sender,
    Stage,
    ThreadStatus,
)

# --- value validators ----------------------------------------------------------------------


def check_timezone(value: str) -> str:
    """Accept an IANA timezone name such as ``Europe/London``."""
    if value not in _TIMEZONES:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown timezone {value!r}; use an IANA name like Europe/London"
            ) from None
    return value


def check_region(value: str) -> str:
    """Accept an ISO 3166 region code that phone numbers can be parsed for (``GB``, ``US``)."""
    region = value.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown region {value!r}; use a two-letter code like GB or US")
    return region


def check_e164(value: str) -> str:
    """Accept a valid phone number already in E.164 form (``+447700900000``)."""
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise ValueError("must be a phone number in E.164 form, like +447700900000") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError("is not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def check_mailbox(value: str) -> str:
    """Accept ``addr@host`` or ``Name <addr@host>``."""
    _, address = parseaddr(value)
    try:
        validate_email(address, check_deliverability=False, test_environment=True)
    except EmailNotValidError as error:
        raise ValueError(f"is not a valid sender address: {error}") from None
    return value


_CONTROL = {chr(code) for code in range(32)} - {"\t", "\n", "\r"} | {"\x7f"}


def check_text(value: str) -> str:
    """Refuse NUL and other control characters (PostgreSQL can't store NUL in text)."""
    if any(char in _CONTROL for char in value):
        raise ValueError("must not contain control characters")
    return value


#: An RFC 3339 date-time (what OpenAPI's ``format: date-time`` means), offset and all.
_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?P<offset>[Zz]|[+-][0-9]{2}:[0-9]{2})?"
)


def check_date_time(value: object) -> object:
    """Accept only a date-time string with its offset: pydantic on its own also reads a
    number (``0.5``) as a Unix time."""
    found = _DATE_TIME.fullmatch(value) if isinstance(value, str) else None
    if found is None:
        raise ValueError("must be an ISO 8601 date-time, e.g. 2026-11-01T00:00:00Z")
    if found["offset"] is None:
        raise ValueError("needs a timezone, e.g. 2026-11-01T00:00:00Z")
    return value


def _blank_to_none(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def check_json_text(value: Any) -> Any:
    """Refuse control characters anywhere in a JSON document's keys and strings."""
    if isinstance(value, str):
        check_text(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key)
            check_json_text(item)
    elif isinstance(value, list):
        for item in value:
            check_json_text(item)
    return value


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be a positive duration such as PT15M or P1D")
    return value


_TIMEZONES = available_timezones()


@dataclass(frozen=True)
class Documented:
    """States in the JSON Schema (and so in the OpenAPI document) what a validator checks;
    the validator still decides."""

    keywords: dict[str, Any]

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """The type's schema with ``keywords`` added."""
        return {**handler(core_schema), **self.keywords}

    def __hash__(self) -> int:
        return hash(repr(self.keywords))


@dataclass(frozen=True)
class DocumentedAs:
    """States in the JSON Schema that a value is what ``type_`` describes (the validator
    still decides)."""

    type_: Any

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """The schema of ``type_``, with the type's own constraints (lengths) kept."""
        return {**handler(core_schema), **handler(TypeAdapter(self.type_).core_schema)}


#: ``check_text`` as a JSON Schema pattern: no control characters but tab, newline, return.
_CONTROL_RANGE = "\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f"
TEXT_PATTERN = f"^[^{_CONTROL_RANGE}]*$"
#: What ``str.strip()`` removes, control characters aside.
_BLANK = "\\t\\n\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
#: ``check_text`` and not blank: some character is neither a control character nor blank.
NON_BLANK_TEXT_PATTERN = f"^[^{_CONTROL_RANGE}]*[^{_CONTROL_RANGE}{_BLANK}][^{_CONTROL_RANGE}]*$"
#: ``check_region``: a region phone numbers can be read for, in any case.
_REGION_PATTERN = "^(?:{})$".format(
    "|".join(
        "".join(f"[{c}{c.lower()}]" for c in region)
        for region in sorted(phonenumbers.SUPPORTED_REGIONS)
    )
)

#: Free text from outside: no control characters.
Text = Annotated[str, AfterValidator(check_text), Documented({"pattern": TEXT_PATTERN})]
#: Text with something in it besides whitespace (its validator says so).
NonBlankText = Annotated[Text, Documented({"pattern": NON_BLANK_TEXT_PATTERN})]
#: An optional name-like field: trimmed, blank becomes ``None``.
Name = Annotated[
    str | None,
    AfterValidator(_blank_to_none),
    AfterValidator(lambda v: v and check_text(v)),
    Documented({"pattern": TEXT_PATTERN}),
]
StrictNumber = Annotated[float, Strict()]
#: A date-time from outside: RFC 3339, with its offset.
DateTime = Annotated[AwareDatetime, BeforeValidator(check_date_time)]
#: Object keys without control characters.
_KEYS = Documented({"propertyNames": {"pattern": TEXT_PATTERN}})
Timezone = Annotated[
    str,
    AfterValidator(check_timezone),
    Documented({"enum": sorted(_TIMEZONES), "description": "An IANA timezone name."}),
]
Region = Annotated[
    str,
    AfterValidator(check_region),
    Documented({"pattern": _REGION_PATTERN, "description": "ISO 3166 region (any case)."}),
]
_N = "[0-9]+"
_SECONDS = "[0-9]+(?:[.][0-9]+)?S"
_DATE = f"(?:{_N}Y(?:{_N}M)?(?:{_N}W)?(?:{_N}D)?|{_N}M(?:{_N}W)?(?:{_N}D)?|{_N}W(?:{_N}D)?|{_N}D)"
_TIME = f"T(?:{_N}H(?:{_N}M)?(?:{_SECONDS})?|{_N}M(?:{_SECONDS})?|{_SECONDS})"
#: An ISO 8601 duration as keepwarm reads it: years (365 days), months (30), weeks, days,
#: hours, minutes, seconds, at least one of them (``P1D``, ``PT15M``, ``P1Y35DT1.5S``).
DURATION_PATTERN = f"^P(?:{_DATE}(?:{_TIME})?|{_TIME})$"
#: A duration as keepwarm writes it: ISO 8601 in years (365 days), days, hours, minutes and
#: seconds (``P1Y35DT1.5S``), which RFC 3339's stricter ``duration`` grammar doesn't cover.
_DURATION_OUT: JsonDict = {
    "type": "string",
    "pattern": "^P(?:[0-9]+Y)?(?:[0-9]+D)?"
    "(?:T(?:[0-9]+H)?(?:[0-9]+M)?(?:[0-9]+(?:[.][0-9]+)?S)?)?$",
    "description": "An ISO 8601 duration (PT15M, P1D, P1Y35DT1.5S).",
}
#: An email address from outside, as ``email_validator`` reads it.
Email = Annotated[
    EmailStr,
    Documented(
        {
            "description": "An address at a domain that can receive mail: special-use "
            "domains (.test, .invalid, .localhost, .local, ...) are refused."
        }
    ),
]
#: A phone number's ``format`` in the OpenAPI document: dialable, with its country code
#: (``+44 7700 900000``), or for a lead's own number also as dialled in the org's region.
PHONE_FORMAT = "phone"
#: ``Name <addr@host>`` or ``addr@host``.
MAILBOX_FORMAT = "mailbox"
E164 = Annotated[
    str,
    AfterValidator(check_e164),
    Documented({"format": PHONE_FORMAT, "description": "Stored in E.164 (+447700900000)."}),
]
Mailbox = Annotated[
    str,
    Field(max_length=320),
    AfterValidator(check_mailbox),
    Documented({"format": MAILBOX_FORMAT}),
]
Duration = Annotated[
    timedelta,
    AfterValidator(_positive),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": DURATION_PATTERN},
                {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 86400e9},
            ],
            "description": "A positive ISO 8601 duration (PT15M, P1D) or seconds, at most "
            "999,999,999 days.",
        },
        mode="validation",
    ),
    WithJsonSchema(_DURATION_OUT, mode="serialization"),
]


def _takeover_timeout(value: timedelta) -> timedelta:
    if not timedelta(minutes=1) <= value <= timedelta(days=1):
        raise ValueError("must be between PT1M and P1D")
    return value


TakeoverTimeout = Annotated[
    timedelta,
    AfterValidator(_takeover_timeout),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": DURATION_PATTERN},
                {"type": "number", "minimum": 60, "maximum": 86400},
            ],
            "description": "An ISO 8601 duration or seconds, from PT1M to P1D.",
        },
        mode="validation",
    ),
    WithJsonSchema(_DURATION_OUT, mode="serialization"),
]
#: A Twilio Content API template (an approved WhatsApp template): ``HX`` and 32 hex digits.
ContentSid = Annotated[str, Field(pattern=r"^HX[0-9a-fA-F]{32}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- org settings --------------------------------------------------------------------------


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


class QuietHours(_Strict):
    """Per-channel send windows in the recipient's local time; ``None`` means any time."""

    sms: Window = ["08:00", "21:00"]
    whatsapp: Window = ["08:00", "21:00"]
    voice: Window = ["08:00", "21:00"]
    email: Window = None
    weekdays_only: bool = False


class TouchBudget(_Strict):
    """How many touches a contact may get."""

    per_24h: int = Field(default=3, ge=1, le=50)
    calls_per_subject_per_24h: int = Field(default=3, ge=1, le=20)


class CallPolicy(_Strict):
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


class Sla(_Strict):
    """How long an escalation may wait for a person, per priority."""

    urgent: Duration = timedelta(minutes=5)
    high: Duration = timedelta(minutes=15)
    medium: Duration = timedelta(hours=1)
    low: Duration = timedelta(hours=4)


Points = Annotated[int, Field(ge=-100, le=100)]
Phrase = Annotated[Text, Field(min_length=1, max_length=60)]
#: A dict keyed by phrases: JSON Schema files the keys' pattern under ``patternProperties``,
#: so a key that doesn't match must be refused outright.
_PHRASES_ONLY: JsonDict = {"additionalProperties": False}


class ValueTier(_Strict):
    """Points for a lead whose value (or cart value) is at least ``min``."""

    min: float = Field(ge=0)
    points: Points


class IntentThresholds(_Strict):
    """The lowest score of each intent; below ``window_shopper`` a lead is ``browsing``."""

    high_value: int = Field(default=70, ge=0, le=100)
    engaged: int = Field(default=45, ge=0, le=100)
    window_shopper: int = Field(default=20, ge=0, le=100)

    @model_validator(mode="after")
    def _descending(self) -> IntentThresholds:
        if not self.high_value > self.engaged > self.window_shopper:
            raise ValueError("thresholds must fall: high_value > engaged > window_shopper")
        return self


class ScoringRules(_Strict):
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
        },
        max_length=200,
        json_schema_extra=_PHRASES_ONLY,
    )
    #: Points when the person converted before (a returning customer).
    returning_customer: Points = 15
    thresholds: IntentThresholds = Field(default_factory=IntentThresholds)


class OrgSettings(_Strict):
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


class OrgSettingsPatch(_Strict):
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


class OrgCreate(_Strict):
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


# --- intake --------------------------------------------------------------------------------


class ConsentInput(_Strict):
    """What the person agreed to on the form; ``None`` means not asked."""

    sms: StrictBool | None = None
    email: StrictBool | None = None
    voice: StrictBool | None = None


# --- sequences -----------------------------------------------------------------------------

#: Placeholders a sequence template may use.
TEMPLATE_FIELDS = frozenset({"first_name", "name", "org_name"})
_PLACEHOLDER = re.compile(r"{([^{}]*)}")
SequenceName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,59}$")]


def check_template(value: str) -> str:
    """A message template: text with ``{first_name}``, ``{name}`` or ``{org_name}`` only."""
    check_text(value)
    unknown = sorted(set(_PLACEHOLDER.findall(value)) - TEMPLATE_FIELDS)
    if unknown:
        known = ", ".join(f"{{{field}}}" for field in sorted(TEMPLATE_FIELDS))
        raise ValueError(f"unknown placeholder {{{unknown[0]}}}; use {known}")
    if value.count("{") != value.count("}"):
        raise ValueError("unbalanced braces")
    return value


Template = Annotated[
    str,
    Field(min_length=1, max_length=1600),
    AfterValidator(check_template),
    Documented(
        {
            "pattern": "^(?:[^{}\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f]|\\{(?:"
            + "|".join(sorted(TEMPLATE_FIELDS))
            + ")\\})*$"
        }
    ),
]


StopOn = Literal["reply", "booking", "payment"]


def _all_stops() -> list[StopOn]:
    return ["reply", "booking", "payment"]


class SequenceStep(_Strict):
    """One touch of a nudge sequence, ``after`` the previous one (or the first touch)."""

    after: Duration
    channel: Channel
    template: Template


class SequenceIn(_Strict):
    """``PUT /v1/sequences/{name}``."""

    applies_to: list[Intent] = Field(
        min_length=1, max_length=4, json_schema_extra={"uniqueItems": True}
    )
    steps: list[SequenceStep] = Field(min_length=1, max_length=20)
    max_attempts: int = Field(default=5, ge=1, le=20)
    stop_on: list[StopOn] = Field(
        default_factory=_all_stops, json_schema_extra={"uniqueItems": True}
    )

    @field_validator("applies_to", "stop_on")
    @classmethod
    def _distinct(cls, values: list[Any]) -> list[Any]:
        if len(set(values)) != len(values):
            raise ValueError("list each value once")
        return values


class SequencePublic(SequenceIn):
    """A sequence as ``GET /v1/sequences`` lists it."""

    name: str
    #: ``True`` for a built-in default the org has not replaced.
    default: bool


class SequenceList(BaseModel):
    """``GET /v1/sequences``."""

    items: list[SequencePublic]


#: A lead's phone number as given: with its country code, or as dialled in the org's region.
LeadPhone = Annotated[Text, Documented({"format": PHONE_FORMAT})]
#: Any JSON value whose keys and strings have no control characters (``check_json_text``),
#: as the OpenAPI document states it.
JsonText = TypeAliasType(
    "JsonText",
    "Text | float | bool | list[JsonText] | Annotated[dict[str, JsonText], _KEYS] | None",
)
#: At least one way to reach the person.
_REACHABLE: JsonDict = {
    "anyOf": [
        {"required": ["email"], "properties": {"email": {"type": "string"}}},
        {"required": ["phone"], "properties": {"phone": {"type": "string"}}},
    ]
}


class LeadCreate(_Strict):
    """``POST /v1/leads``: a form submission or a manual lead."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_REACHABLE)

    event_id: Text | None = Field(default=None, min_length=1, max_length=200)
    name: Name = Field(default=None, max_length=200)
    email: Email | None = Field(default=None, max_length=320)
    phone: LeadPhone | None = Field(default=None, min_length=3, max_length=40)
    source: Name = Field(default=None, max_length=100)
    message: Text | None = Field(default=None, max_length=5000)
    value: StrictNumber | None = Field(default=None, ge=0, le=1e12, allow_inf_nan=False)
    timezone: Timezone | None = None
    consent: ConsentInput = Field(default_factory=ConsentInput)
    fields: Annotated[
        dict[str, Any],
        AfterValidator(check_json_text),
        DocumentedAs(Annotated[dict[str, JsonText], _KEYS]),
    ] = Field(default_factory=dict)

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str | None) -> str | None:
        return value.strip().lower() if value else value

    @model_validator(mode="after")
    def _reachable(self) -> LeadCreate:
        if not self.email and not self.phone:
            raise ValueError("give at least one of email, phone")
        return self


class CartCustomer(_Strict):
    """Who the cart belongs to."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_REACHABLE)

    email: Email | None = Field(default=None, max_length=320)
    phone: LeadPhone | None = Field(default=None, min_length=3, max_length=40)
    name: Name = Field(default=None, max_length=200)

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str | None) -> str | None:
        return value.strip().lower() if value else value

    @model_validator(mode="after")
    def _reachable(self) -> CartCustomer:
        if not self.email and not self.phone:
            raise ValueError("give at least one of email, phone")
        return self


class CartEvent(_Strict):
    """``POST /v1/events/cart``: a cart started, abandoned or bought."""

    #: Stored as ``cart:{event_id}``, which must fit the receipts' 200 characters.
    event_id: Text = Field(min_length=1, max_length=195)
    customer: CartCustomer
    status: Literal["started", "abandoned", "purchased"]
    value: StrictNumber = Field(ge=0, le=1e12, allow_inf_nan=False)
    items: Annotated[list[Any], AfterValidator(check_json_text), DocumentedAs(list[JsonText])] = (
        Field(default_factory=list, max_length=200)
    )
    url: Text | None = Field(default=None, max_length=2000)


class IntakeAccepted(BaseModel):
    """``202`` answer to an intake."""

    lead_id: str
    workflow_id: str
    duplicate: bool


class BookingIn(_Strict):
    """``POST /v1/leads/{lead_id}/bookings``: the lead booked (from a calendar or by hand)."""

    #: The dedupe key: the same booking again changes nothing.
    #: Stored as ``booking:{event_id}``, within the receipts' 200 characters.
    event_id: Text = Field(min_length=1, max_length=192)
    starts_at: DateTime | None = None
    note: Text | None = Field(default=None, max_length=1000)


class BookingAccepted(BaseModel):
    """``202`` answer to a booking."""

    lead_id: str
    booking_id: str
    duplicate: bool


# --- reading -------------------------------------------------------------------------------


class LeadSummary(BaseModel):
    """A lead in a list."""

    lead_id: str
    name: str | None
    stage: Stage
    score: int
    intent: Intent | None
    source: str | None
    value: float | None
    created_at: datetime
    first_contact_at: datetime | None


class LeadList(BaseModel):
    """A page of leads."""

    items: list[LeadSummary]
    next_cursor: str | None


class ContactPublic(BaseModel):
    """A contact with every identity and the current consent per channel."""

    id: str
    name: str | None
    emails: list[str]
    phones: list[str]
    identities: list[dict[str, str]]
    consent: dict[str, bool | None]


class TimelineItem(BaseModel):
    """One line of a lead's timeline."""

    at: datetime
    kind: str
    summary: str
    data: dict[str, Any]


class Attempts(BaseModel):
    """Touches used and allowed."""

    used: int
    cap: int


class LiveStatus(BaseModel):
    """What the lead's workflow says right now."""

    workflow_id: str
    status: str
    next_action: str | None = None
    next_action_at: datetime | None = None
    attempts: Attempts | None = None
    waiting_reason: str | None = None


class CallPublic(BaseModel):
    """One AI voice call keepwarm placed for a lead, as far as it has gone."""

    call_id: str
    attempt: int
    status: CallStatus
    #: Set with the end-of-call report, from Vapi's ``ended_reason`` (kept verbatim).
    outcome: CallOutcome | None
    ended_reason: str | None
    duration_s: float | None
    cost: float | None
    summary: str | None
    placed_at: datetime | None
    ended_at: datetime | None


class LeadDetail(LeadSummary):
    """``GET /v1/leads/{lead_id}``."""

    workflow_id: str
    message: str | None
    fields: dict[str, Any]
    contact: ContactPublic
    timeline: list[TimelineItem]
    live: LiveStatus | None
    #: Oldest first.
    calls: list[CallPublic]


class MessagePublic(BaseModel):
    """A message in or out."""

    id: str
    lead_id: str | None
    thread_id: str | None
    channel: Channel
    direction: Direction
    sender: Sender
    #: The operator who wrote it (``sender == "human"``).
    operator_id: str | None = None
    body: str
    status: MessageStatus
    idempotency_key: str | None
    created_at: datetime


class MessageList(BaseModel):
    """``GET /v1/messages``."""

    items: list[MessagePublic]


class Percentiles(BaseModel):
    """Seconds from intake to the first outbound touch; ``None`` without data."""

    p50_s: float | None
    p90_s: float | None


class LeadValue(BaseModel):
    """The value of the leads in the report."""

    total: float
    average: float | None


class SourceLine(BaseModel):
    """One source's leads in the report."""

    source: str | None
    leads: int
    converted: int
    value: float


class PipelineReport(BaseModel):
    """``GET /v1/pipeline``."""

    stages: dict[str, int]
    conversion_rate: float
    time_to_first_contact: Percentiles
    lead_value: LeadValue
    by_source: list[SourceLine]


class CallHour(BaseModel):
    """The ended calls placed at one local hour of the recipient's day."""

    hour: int
    calls: int
    answered: int
    answer_rate: float


class CallStats(BaseModel):
    """``GET /v1/calls/stats``: how the org's AI voice calls went.

    ``ended`` calls have an end-of-call report, and so an outcome, a duration and a cost;
    the rates and averages are over them (calls still ringing or never placed have none).
    """

    calls: int
    ended: int
    by_outcome: dict[str, int]
    #: Answered / ended; ``None`` when no call has ended.
    answer_rate: float | None
    total_cost: float
    #: Total cost / ended calls.
    cost_per_call: float | None
    #: Total cost (unanswered attempts included) / answered calls: the price of a conversation.
    cost_per_answered_call: float | None
    average_duration_s: float | None
    #: Ended calls by the recipient's local hour when placed, hours without any left out.
    by_local_hour: list[CallHour]


class ErrorDetail(BaseModel):
    """One problem with the request."""

    field: str | None = None
    message: str


class ErrorInfo(BaseModel):
    """The error itself."""

    code: str
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorBody(BaseModel):
    """The envelope every error is returned in."""

    error: ErrorInfo


LeadSort = Literal["recent", "oldest", "score", "value"]


# --- the inbox and operators -------------------------------------------------------------

ThreadPriority = Priority
#: ``recent``: latest message first; ``oldest_unread``: unread threads first, the one waiting
#: longest since its last inbound message at the top; ``priority``: urgent to low, then
#: recent; ``value``: the contact's lifetime value, highest first, then recent.
ThreadSort = Literal["recent", "oldest_unread", "priority", "value"]


class LastMessage(BaseModel):
    """The latest message of a thread, its body cut to a preview."""

    body: str
    channel: Channel
    direction: Direction
    created_at: datetime


class ThreadSummary(BaseModel):
    """A thread in the inbox."""

    thread_id: str
    contact_id: str
    name: str | None
    status: ThreadStatus
    handled_by: HandledBy
    priority: ThreadPriority
    assigned_to: str | None
    #: Channels the thread has messages on, in ``Channel`` order.
    channels: list[Channel]
    last_message: LastMessage | None
    last_message_at: datetime | None
    #: ``status == "unread"``.
    unread: bool
    #: The contact's lifetime value: the sum of the ``value`` of their converted leads.
    value: float
    #: Escalations of this thread not yet resolved (open or acknowledged).
    open_escalations: int
    #: The operator holding the thread (a takeover: the AI writes nothing), and since when.
    held_by: str | None = None
    held_since: datetime | None = None


class ThreadList(BaseModel):
    """``GET /v1/threads``: a page of the inbox."""

    items: list[ThreadSummary]
    next_cursor: str | None


class ThreadContact(BaseModel):
    """Who the thread is with."""

    id: str
    name: str | None
    emails: list[str]
    phones: list[str]


class ThreadMessage(BaseModel):
    """A message of a thread."""

    id: str
    channel: Channel
    direction: Direction
    sender: Sender
    #: The operator who wrote it (``sender == "human"``).
    operator_id: str | None = None
    body: str
    status: MessageStatus
    created_at: datetime


class ThreadEscalation(BaseModel):
    """An unresolved escalation of a thread."""

    escalation_id: str
    reason: str
    priority: str
    summary: str
    status: str
    level: int
    opened_at: datetime
    sla_due_at: datetime


class ThreadDetail(ThreadSummary):
    """``GET /v1/threads/{thread_id}``."""

    contact: ThreadContact
    #: The latest messages, oldest first (at most the request's ``limit``, 500 by default).
    messages: list[ThreadMessage]
    #: How many older messages ``messages`` leaves out.
    earlier_messages: int
    #: Unresolved escalations, the one whose SLA runs out first at the top.
    escalations: list[ThreadEscalation]
    #: When a takeover ends on its own if its operator writes nothing more.
    releases_at: datetime | None = None


OperatorId = Annotated[Text, Field(min_length=1, max_length=64)]
ReplyChannel = Literal["sms", "whatsapp", "email"]


class TakeoverIn(_Strict):
    """``POST /v1/threads/{id}/takeover`` and ``.../release``."""

    operator_id: OperatorId


class TakeoverOut(BaseModel):
    """Where a thread's takeover stands after ``takeover`` or ``release``."""

    thread_id: str
    #: ``None``: the AI has the conversation.
    held_by: str | None
    held_since: datetime | None
    #: When the hold ends on its own unless its operator writes again.
    releases_at: datetime | None
    #: Escalations of the thread the takeover acknowledged.
    acknowledged: list[str]
    #: ``False`` when the call changed nothing (a repeated takeover or release).
    changed: bool


class ReplyIn(_Strict):
    """``POST /v1/threads/{id}/reply``."""

    operator_id: OperatorId
    body: NonBlankText = Field(min_length=1, max_length=1600)
    #: The thread's channel (the customer's last message's) unless given.
    channel: ReplyChannel | None = None
    #: The client's key for this reply: a retry with it sends nothing twice.
    idempotency_key: Text | None = Field(default=None, min_length=1, max_length=100)

    @field_validator("body")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class ReplyOut(BaseModel):
    """``202``: the reply is recorded and on its way."""

    message_id: str
    thread_id: str
    channel: Channel
    status: MessageStatus
    #: When it goes: now, or when quiet hours end in the contact's local time.
    send_at: datetime
    #: The reply took the thread over (the operator didn't hold it).
    took_over: bool
    #: A retry of an earlier reply (same ``idempotency_key``): nothing new was sent.
    duplicate: bool


class OperatorCreate(_Strict):
    """``POST /v1/operators``."""

    name: NonBlankText = Field(min_length=1, max_length=200)
    phone: E164 | None = None
    email: Email | None = Field(default=None, max_length=320)
    role: OperatorRole

    @field_validator("name")
    @classmethod
    def _named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str | None) -> str | None:
        return value.strip().lower() if value else value


class OperatorPublic(BaseModel):
    """An operator, and whether their inbox sent a heartbeat in the last 2 minutes."""

    id: str
    name: str
    phone: str | None
    email: str | None
    role: OperatorRole
    online: bool
    last_seen_at: datetime | None


class OperatorList(BaseModel):
    """``GET /v1/operators``."""

    items: list[OperatorPublic]
