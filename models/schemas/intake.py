"""What comes in: leads, carts and bookings, consent, and nudge sequences as the API takes them."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
    model_validator,
)
from pydantic.config import JsonDict
from typing_extensions import TypeAliasType

from models.schemas.fields import (
    _KEYS,
    PHONE_FORMAT,
    DateTime,
    Documented,
    DocumentedAs,
    Duration,
    Email,
    Name,
    Slug,
    StrictModel,
    StrictNumber,
    Text,
    Timezone,
    check_json_text,
    check_text,
)
from models.values import (
    Channel,
    Intent,
)


class ConsentInput(StrictModel):
    """What the person agreed to on the form; ``None`` means not asked."""

    sms: StrictBool | None = None
    email: StrictBool | None = None
    voice: StrictBool | None = None


# --- sequences -----------------------------------------------------------------------------

#: Placeholders a sequence template may use.
TEMPLATE_FIELDS = frozenset({"first_name", "name", "org_name"})
_PLACEHOLDER = re.compile(r"{([^{}]*)}")
SEQUENCE_NAME = Slug("a sequence name", 60)
SequenceName = Annotated[str, SEQUENCE_NAME]


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


VariantName = Annotated[str, Slug("a variant name", 20)]
#: How a step's leads are shared among its variants: by ``weights`` alone, or shifted toward
#: the variant more likely to be best once each has its minimum sample (Thompson sampling,
#: never below a floor for any variant: ``models.rules.experiments``).
Allocation = Literal["weights", "thompson"]


class Variant(StrictModel):
    """One version of a step's message in an experiment."""

    name: VariantName
    template: Template
    #: Send this variant on another channel than the step's (a text against an email).
    channel: Channel | None = None


#: A step is a plain message or an experiment: ``template`` or ``variants``, not both.
_ONE_MESSAGE: JsonDict = {
    "oneOf": [
        {
            "required": ["template"],
            "properties": {
                "template": {"type": "string"},
                "variants": {"type": "null"},
                "weights": {"type": "null"},
                "allocation": {"const": "weights"},
            },
        },
        {
            "required": ["variants"],
            "properties": {"variants": {"type": "array"}, "template": {"type": "null"}},
        },
    ]
}


class SequenceStep(StrictModel):
    """One touch of a nudge sequence, ``after`` the previous one (or the first touch).

    The step says either ``template`` or ``variants`` (2 to 4, each lead gets one, decided
    from the lead and kept). ``fallback`` lists the channels to use, in order, when the
    person can't be reached on the step's own (they withdrew consent, or there is no
    address); without one such a step is skipped with a note on the lead's timeline.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra=_ONE_MESSAGE)

    after: Duration
    channel: Channel
    template: Template | None = None
    variants: list[Variant] | None = Field(default=None, min_length=2, max_length=4)
    #: Relative shares of the variants, in their order (equal when left out).
    weights: list[Annotated[float, Field(gt=0, le=1000, allow_inf_nan=False)]] | None = None
    allocation: Allocation = "weights"
    fallback: list[Channel] = Field(
        default_factory=list, max_length=3, json_schema_extra={"uniqueItems": True}
    )

    @model_validator(mode="after")
    def _one_message(self) -> SequenceStep:
        if (self.template is None) == (self.variants is None):
            raise ValueError("give either template or variants")
        message_channels = [self.channel, *(v.channel for v in self.variants or []), *self.fallback]
        if (
            Channel.VOICE in self.fallback
            or (self.fallback and self.channel == Channel.VOICE)
            or (self.variants is not None and Channel.VOICE in message_channels)
        ):
            raise ValueError("variants and fallbacks are messages: sms, whatsapp or email")
        if self.variants is not None:
            names = [variant.name for variant in self.variants]
            if len(set(names)) != len(names):
                raise ValueError("name each variant once")
        if self.weights is not None and len(self.weights) != len(self.variants or []):
            raise ValueError("give one weight per variant")
        if self.allocation == "thompson" and self.variants is None:
            raise ValueError("thompson allocation needs variants")
        if len(set(self.fallback)) != len(self.fallback) or self.channel in self.fallback:
            raise ValueError("list each fallback channel once, other than the step's")
        return self


class SequenceIn(StrictModel):
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


class LeadCreate(StrictModel):
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


class CartCustomer(StrictModel):
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


class CartEvent(StrictModel):
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


class BookingIn(StrictModel):
    """``POST /v1/leads/{lead_id}/bookings``: the lead booked a visit (from a calendar or by
    hand). ``starts_at`` is in the future; ``ends_at``, if given, after it."""

    #: The dedupe key: the same booking again changes nothing.
    #: Stored as ``booking:{event_id}``, within the receipts' 200 characters.
    event_id: Text = Field(min_length=1, max_length=192)
    starts_at: DateTime
    ends_at: DateTime | None = None
    #: Who does the visit (``POST /v1/providers``).
    provider_id: Text | None = Field(default=None, min_length=1, max_length=40)
    #: What the visit is ("deep clean"), in the customer's messages.
    service: Text | None = Field(default=None, min_length=1, max_length=200)
    address: Text | None = Field(default=None, max_length=500)
    note: Text | None = Field(default=None, max_length=1000)

    @model_validator(mode="after")
    def _ends_after_start(self) -> BookingIn:
        if self.ends_at is not None and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class BookingAccepted(BaseModel):
    """``201`` answer to a booking: the booking and its ``Appointment`` workflow."""

    lead_id: str
    booking_id: str
    workflow_id: str
    duplicate: bool
