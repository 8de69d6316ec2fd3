"""Field types and validators the API and settings schemas share: text without control
characters, RFC 3339 date-times only, time zones, regions, phones, mailboxes, durations, and
how each is documented in the OpenAPI schema."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parseaddr
from typing import Annotated, Any
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
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    Strict,
    TypeAdapter,
    WithJsonSchema,
)
from pydantic.config import JsonDict
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema


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
    """Accept a valid phone number already in E.164 form (``+447911123456``)."""
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise ValueError("must be a phone number in E.164 form, like +447911123456") from None
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


def check_email(value: str) -> str:
    """A person's email address, lower-cased (a sign-in name)."""
    try:
        return validate_email(value.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as error:
        raise ValueError(f"is not a valid email address: {error}") from None


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
class Slug:
    """A lower-case name (``Annotated[str, Slug("a sequence name", 60)]``): letters, digits,
    ``-`` and ``_``, starting with a letter or digit, at most ``longest``. Refused with a
    message that says so rather than the bare pattern, which the JSON Schema states."""

    what: str
    longest: int

    @property
    def pattern(self) -> str:
        return rf"^[a-z0-9][a-z0-9_-]{{0,{self.longest - 1}}}$"

    @property
    def rule(self) -> str:
        """The pattern in words."""
        return (
            f"use lower-case letters, digits, - and _ (up to {self.longest}), "
            "starting with a letter or digit"
        )

    def check(self, value: str) -> str:
        """``value`` if it is such a name."""
        if not re.fullmatch(self.pattern, value):
            raise ValueError(f"{value[:80]!r} is not {self.what}: {self.rule}")
        return value

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        """The string's schema, checked by ``check`` afterwards."""
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """The string's schema with the pattern."""
        return {**handler(schema), "pattern": self.pattern}


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
    Documented({"format": PHONE_FORMAT, "description": "Stored in E.164 (+447911123456)."}),
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


class StrictModel(BaseModel):
    """A request or settings model that refuses fields it does not know."""

    model_config = ConfigDict(extra="forbid")
