"""The owner's Settings pages (``/app/settings``): org settings, quiet hours, the provider
mode switch and the audit list of changes.

Every change goes through the same validation and the same service as ``PATCH /v1/orgs/me``
(``OrgSettingsPatch``, then ``change_settings``), so a value the API refuses is refused here
with pydantic's own words beside the field, and every change that changes something lands in
the audit list in the same transaction. Durations are typed as a number and a unit (minutes,
hours, days) and sent on as seconds, which the ``Duration`` type takes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

from fastapi import APIRouter, Depends, Form, Request
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import FormData
from starlette.responses import Response

from api.deps import DatabaseDep, OrgCacheDep, SettingsDep
from api.errors import ApiError
from api.sessions import OperatorSessionDep
from api.ui.render import page
from models.reads.settings_changes import settings_changes
from models.rules.orgs import org_settings
from models.rules.settings_changes import (
    describe_changes,
    human_duration,
    plain_number,
    section_label,
)
from models.schemas import OrgSettings, OrgSettingsPatch
from models.services.settings import change_settings
from models.services.sign_in import Current
from models.tables import Org, utcnow
from models.values import OperatorRole, ProviderMode

router = APIRouter(prefix="/app", include_in_schema=False)


async def _require_owner(me: OperatorSessionDep) -> Current:
    """The signed-in owner; anyone else gets 403 on every settings page and form."""
    if me.operator.role != OperatorRole.OWNER:
        raise ApiError(403, "Only the owner can see and change the settings.", code="owner_only")
    return me


OwnerDep = Annotated[Current, Depends(_require_owner)]

# --- durations: a number and a unit on the page, seconds to the validation ----------------

#: The units a duration is typed in, with their length in seconds.
UNITS = {"minutes": 60, "hours": 3_600, "days": 86_400}
_DURATION = TypeAdapter(timedelta)


def split_duration(value: timedelta) -> tuple[str, str]:
    """``value`` as the page shows it: the largest unit it is a whole number of (minutes
    otherwise, with decimals), and how many."""
    seconds = value.total_seconds()
    for unit in ("days", "hours", "minutes"):
        if seconds % UNITS[unit] == 0:
            return plain_number(seconds / UNITS[unit]), unit
    return plain_number(seconds / 60), "minutes"


def _seconds(number: str, unit: str) -> object:
    """A typed duration as the ``Duration`` type takes it: seconds, or (not a number) the
    text as typed, for the validation to refuse in its own words."""
    try:
        amount = float(number)
    except ValueError:
        return number
    if not math.isfinite(amount) or unit not in UNITS:
        return number
    return amount * UNITS[unit]


def _humane(message: str) -> str:
    """pydantic's message, with the ISO 8601 durations it names said in words."""

    def said(found: re.Match[str]) -> str:
        try:
            return human_duration(_DURATION.validate_python(found.group(0)))
        except ValidationError:
            return found.group(0)

    return re.sub(r"\bP[0-9WDTHMSY.]+\b", said, message)


# --- the General form ---------------------------------------------------------------------

Kind = Literal["text", "int", "float", "duration", "lines", "textarea", "spacing"]


@dataclass(frozen=True)
class Setting:
    """One setting on the General page: its path in the settings document, how it is typed,
    and what the page says about it."""

    name: str
    label: str
    kind: Kind = "text"
    hint: str = ""
    #: Empty means ``None`` (the setting is off or unset).
    optional: bool = False
    input_type: str = "text"
    maxlength: int | None = None
    attrs: Mapping[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """The input's id."""
        return "f-" + self.name.replace(".", "-")


@dataclass(frozen=True)
class Group:
    """A fieldset of settings."""

    legend: str
    intro: str
    settings: tuple[Setting, ...]
    #: Settings shown side by side as a grid (short inputs).
    columns: bool = True


_NUMBER = {"inputmode": "decimal"}
#: How many waits between calls a policy may have (``CallPolicy.spacing``).
MAX_SPACING = 10

GENERAL: tuple[Group, ...] = (
    Group(
        "Region and time",
        "Where the business is.",
        (
            Setting(
                "timezone",
                "Timezone",
                hint="Like Europe/London. Used when a customer's own time zone is unknown.",
                attrs={"list": "timezones", "autocomplete": "off"},
            ),
            Setting(
                "default_region",
                "Default region",
                hint="Two letters, like GB or US: how phone numbers typed without a country "
                "code are read.",
                maxlength=2,
                attrs={"autocomplete": "off"},
            ),
        ),
    ),
    Group(
        "Senders",
        "What customers see messages come from. Leave a channel empty if you don't use it.",
        (
            Setting(
                "sms_from",
                "SMS number",
                optional=True,
                input_type="tel",
                hint="In international form, like +447911123456.",
            ),
            Setting(
                "whatsapp_from",
                "WhatsApp number",
                optional=True,
                input_type="tel",
                hint="In international form, like +447911123456.",
            ),
            Setting(
                "email_from",
                "Email sender",
                optional=True,
                maxlength=320,
                hint="An address, or a name and an address: Shine <hi@shine.example>.",
            ),
            Setting(
                "whatsapp_template_sid",
                "WhatsApp template SID",
                optional=True,
                maxlength=34,
                hint="HX and 32 characters, from Twilio: sent once the customer's 24-hour "
                "WhatsApp window has closed. Empty: such messages fail.",
            ),
        ),
    ),
    Group(
        "Voice calls",
        "The Vapi assistant that calls leads, and how often it tries again.",
        (
            Setting("vapi_assistant_id", "Vapi assistant ID", optional=True, maxlength=100),
            Setting("vapi_phone_number_id", "Vapi phone number ID", optional=True, maxlength=100),
            Setting(
                "call_policy.max_attempts",
                "Calls before a person steps in",
                kind="int",
                input_type="number",
                hint="1 to 10 unanswered calls.",
                attrs={"min": "1", "max": "10", "step": "1"},
            ),
            Setting(
                "call_policy.spacing",
                "Wait after an unanswered call",
                kind="spacing",
                hint="The last wait repeats for any later call. Empty a row to drop it.",
            ),
        ),
    ),
    Group(
        "Sending speed",
        "How fast each sender may send, so a morning batch doesn't queue at the provider or "
        "get refused. Waiting messages go hottest lead first. Empty: as fast as the "
        "provider takes them.",
        tuple(
            Setting(
                f"pacing.{channel}",
                label,
                kind="float",
                optional=True,
                input_type="number",
                hint=hint,
                attrs={**_NUMBER, "min": "0.001", "max": "1000", "step": "any"},
            )
            for channel, label, hint in (
                (
                    "sms",
                    "Texts a second, per number",
                    "A US long code takes about 1, a toll-free number 3, a short code 100.",
                ),
                ("whatsapp", "WhatsApp messages a second", "Per WhatsApp sender."),
                ("email", "Emails a second", "Per sending domain."),
                ("calls", "Calls a second", "From the Vapi number; 0.1 is one every 10 s."),
            )
        ),
    ),
    Group(
        "Pace",
        "How much the AI may do, and when a lead counts as gone quiet.",
        (
            Setting(
                "touch_budget.per_24h",
                "AI touches per 24 hours",
                kind="int",
                input_type="number",
                hint="Per person, 1 to 50. Every automated message and call counts.",
                attrs={"min": "1", "max": "50", "step": "1"},
            ),
            Setting(
                "touch_budget.calls_per_subject_per_24h",
                "Calls per 24 hours",
                kind="int",
                input_type="number",
                hint="Per person, 1 to 20. Stricter US state rules apply on their own.",
                attrs={"min": "1", "max": "20", "step": "1"},
            ),
            Setting(
                "inactivity_threshold",
                "Lead goes quiet after",
                kind="duration",
                hint="With no news for this long a lead is ghosting; as long again, lost.",
            ),
            Setting(
                "takeover_timeout",
                "A takeover ends after",
                kind="duration",
                hint="1 minute to 1 day without a message from the person who took over.",
            ),
        ),
    ),
    Group(
        "When a person is needed",
        "Who gets a person, and how long an escalation may wait for one (SLA).",
        (
            Setting(
                "vip_value",
                "VIP value",
                kind="float",
                optional=True,
                input_type="number",
                hint="A customer worth at least this gets a person when they write. Empty: no "
                "VIP rule.",
                attrs={**_NUMBER, "min": "0", "step": "any"},
            ),
            Setting("sla.urgent", "SLA urgent", kind="duration"),
            Setting("sla.high", "SLA high", kind="duration"),
            Setting("sla.medium", "SLA medium", kind="duration"),
            Setting("sla.low", "SLA low", kind="duration"),
            Setting(
                "help_reply",
                "Reply to HELP",
                kind="textarea",
                optional=True,
                maxlength=320,
                hint="Up to 320 characters. Empty: keepwarm's standard answer.",
            ),
        ),
    ),
    Group(
        "Alerts about keepwarm itself",
        "Who is told when sending, calls or webhooks go wrong (the Alerts page has the same "
        "settings). Empty lists mean the owner's own email and phone.",
        (
            Setting(
                "alerts.email",
                "Alert emails",
                kind="lines",
                hint="One per line, up to 5; the first is told first.",
                maxlength=2000,
            ),
            Setting(
                "alerts.sms",
                "Alert SMS numbers",
                kind="lines",
                hint="One per line, up to 5, like +447911123456.",
                maxlength=500,
            ),
            Setting(
                "alerts.sms_per_month",
                "Alert texts per month",
                kind="int",
                input_type="number",
                hint="0 to 1000. Past it, notices go by email.",
                attrs={"min": "0", "max": "1000", "step": "1"},
            ),
            Setting(
                "alerts.speed_to_lead_target",
                "Speed-to-lead target",
                kind="duration",
                hint="Alert when 1 in 10 first replies takes longer.",
            ),
            Setting(
                "alerts.heartbeat_url",
                "Heartbeat URL",
                optional=True,
                input_type="url",
                maxlength=2000,
                hint="Optional, https: pinged at every run of the checks.",
            ),
        ),
    ),
    Group(
        "Prices per message",
        "What one message costs you, for the cost per interaction on the Command Center.",
        (
            Setting(
                "unit_prices.sms",
                "SMS",
                kind="float",
                input_type="number",
                attrs={**_NUMBER, "min": "0", "max": "10", "step": "any"},
            ),
            Setting(
                "unit_prices.whatsapp",
                "WhatsApp",
                kind="float",
                input_type="number",
                attrs={**_NUMBER, "min": "0", "max": "10", "step": "any"},
            ),
            Setting(
                "unit_prices.email",
                "Email",
                kind="float",
                input_type="number",
                attrs={**_NUMBER, "min": "0", "max": "10", "step": "any"},
            ),
            Setting(
                "unit_prices.currency",
                "Currency",
                hint="Three capital letters, like USD or GBP.",
                maxlength=3,
            ),
        ),
    ),
)
_SETTINGS = {setting.name: setting for group in GENERAL for setting in group.settings}
_TIMEZONES = sorted(available_timezones())


def _get(document: Mapping[str, Any], path: str) -> Any:
    value: Any = document
    for part in path.split("."):
        value = value[part]
    return value


def _put(document: dict[str, Any], path: str, value: object) -> None:
    *parents, last = path.split(".")
    for part in parents:
        document = document.setdefault(part, {})
    document[last] = value


def _lines(text: str) -> list[str]:
    return [item.strip() for line in text.splitlines() for item in line.split(",") if item.strip()]


def general_values(settings: OrgSettings) -> dict[str, str]:
    """The General form filled with ``settings``."""
    document = settings.model_dump()
    values: dict[str, str] = {}
    for name, setting in _SETTINGS.items():
        value = _get(document, name)
        if setting.kind == "duration":
            values[name], values[f"{name}.unit"] = split_duration(value)
        elif setting.kind == "spacing":
            for row, wait in enumerate(value):
                values[f"{name}.{row}"], values[f"{name}.{row}.unit"] = split_duration(wait)
        elif setting.kind == "lines":
            values[name] = "\n".join(str(item) for item in value)
        elif value is None:
            values[name] = ""
        elif isinstance(value, float):
            values[name] = plain_number(value)
        else:
            values[name] = str(value)
    return values


def _text(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


@dataclass
class Typed:
    """A submitted settings form: the changes for the API's validation, what was typed (to
    show again), and which spacing row each wait came from."""

    changes: dict[str, Any] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)
    rows: list[int] = field(default_factory=list)
    lists: dict[str, list[str]] = field(default_factory=dict)


def _read_general(form: FormData) -> Typed:
    typed = Typed()
    for name, setting in _SETTINGS.items():
        if setting.kind == "spacing":
            waits = []
            for row in range(MAX_SPACING):
                number = _text(form, f"{name}.{row}").strip()
                unit = _text(form, f"{name}.{row}.unit")
                typed.values[f"{name}.{row}"], typed.values[f"{name}.{row}.unit"] = number, unit
                if number:
                    waits.append(_seconds(number, unit))
                    typed.rows.append(row)
            _put(typed.changes, name, waits)
            continue
        raw = _text(form, name)
        typed.values[name] = raw
        text = raw.strip()
        value: object
        if setting.kind == "duration":
            unit = _text(form, f"{name}.unit")
            typed.values[f"{name}.unit"] = unit
            value = _seconds(text, unit)
        elif setting.kind == "lines":
            value = typed.lists[name] = _lines(raw)
        elif setting.optional and not text:
            value = None
        elif setting.kind == "textarea":
            # Browsers send a textarea's line breaks as CRLF: the same text, unchanged.
            value = raw.replace("\r\n", "\n")
        else:
            value = text
        _put(typed.changes, name, value)
    return typed


#: pydantic's words for "not a duration", which a number and a unit can only be when empty.
_NOT_A_DURATION = frozenset({"time_delta_parsing", "time_delta_type", "timedelta_parsing"})


def field_errors(error: ValidationError, typed: Typed, known: Iterable[str]) -> dict[str, str]:
    """pydantic's errors by the form field they concern (``form`` for any other); a list
    item's error names the item, a wait's goes to its row."""
    names = set(known)
    found: dict[str, list[str]] = {}
    for problem in error.errors():
        loc = [str(part) for part in problem["loc"]]
        message = _humane(str(problem["msg"]).removeprefix("Value error, "))
        name = ".".join(loc)
        if loc[:2] == ["call_policy", "spacing"] and len(loc) > 2 and loc[2].isdigit():
            index = int(loc[2])
            name = f"call_policy.spacing.{typed.rows[index] if index < len(typed.rows) else 0}"
        elif len(loc) > 2 and ".".join(loc[:2]) in typed.lists and loc[2].isdigit():
            name = ".".join(loc[:2])
            items = typed.lists[name]
            index = int(loc[2])
            if index < len(items):
                message = f"“{items[index]}”: {message}"
        if problem["type"] in _NOT_A_DURATION:
            message = "enter a number"
        if name not in names:
            message = f"{name}: {message}" if name else message
            name = "form"
        found.setdefault(name, []).append(message)
    return {name: "; ".join(messages) for name, messages in found.items()}


def _general_labels() -> dict[str, tuple[str, str]]:
    """Each General field's input id and label, by field name (the error list links them)."""
    labels = {name: (s.id, s.label) for name, s in _SETTINGS.items() if s.kind != "spacing"}
    spacing = _SETTINGS["call_policy.spacing"]
    for row in range(MAX_SPACING):
        labels[f"{spacing.name}.{row}"] = (f"{spacing.id}-{row}", f"Wait after call {row + 1}")
    return labels


_GENERAL_LABELS = _general_labels()


# --- quiet hours --------------------------------------------------------------------------

#: The channels with a send window, as the page names them.
CHANNELS = {"sms": "SMS", "whatsapp": "WhatsApp", "voice": "Voice calls", "email": "Email"}
#: The window a channel that was "any time" starts from when the owner limits it.
DEFAULT_WINDOW = ("08:00", "21:00")
_QUIET_LABELS = {
    f"quiet_hours.{channel}": (f"t-{channel}-start", label) for channel, label in CHANNELS.items()
} | {"quiet_hours.weekdays_only": ("weekdays-only", "Weekdays only")}


def quiet_values(settings: OrgSettings) -> dict[str, str]:
    """The quiet hours form filled with ``settings``."""
    hours = settings.quiet_hours
    values = {"quiet_hours.weekdays_only": "on" if hours.weekdays_only else ""}
    for channel in CHANNELS:
        window = getattr(hours, channel)
        start, end = window or DEFAULT_WINDOW
        values |= {
            f"quiet_hours.{channel}.mode": "window" if window else "any",
            f"quiet_hours.{channel}.start": start,
            f"quiet_hours.{channel}.end": end,
        }
    return values


def _read_quiet(form: FormData) -> Typed:
    typed = Typed()
    hours: dict[str, Any] = {"weekdays_only": _text(form, "quiet_hours.weekdays_only") == "on"}
    typed.values["quiet_hours.weekdays_only"] = "on" if hours["weekdays_only"] else ""
    for channel in CHANNELS:
        mode, start, end = (
            _text(form, f"quiet_hours.{channel}.{part}") for part in ("mode", "start", "end")
        )
        typed.values |= {
            f"quiet_hours.{channel}.mode": "any" if mode == "any" else "window",
            f"quiet_hours.{channel}.start": start,
            f"quiet_hours.{channel}.end": end,
        }
        hours[channel] = None if mode == "any" else [start.strip(), end.strip()]
    typed.changes = {"quiet_hours": hours}
    return typed


def _quiet_humane(errors: dict[str, str]) -> dict[str, str]:
    """The window's own wording names the JSON form; the page has two time boxes."""
    return {
        name: message.replace(
            'must be ["HH:MM", "HH:MM"] in 24-hour time', "needs a start and an end time"
        ).replace('must be ["HH:MM", "HH:MM"]', "needs a start and an end time")
        for name, message in errors.items()
    }


# --- saving -------------------------------------------------------------------------------


async def _save(
    me: Current,
    database: DatabaseDep,
    cache: OrgCacheDep,
    *,
    section: str,
    typed: Typed,
    known: Iterable[str],
) -> tuple[Org | None, dict[str, str]]:
    """Validate ``typed.changes`` as ``PATCH /v1/orgs/me`` does and save them with their
    audit entry: the org, or the errors by field (nothing saved)."""
    try:
        patch = OrgSettingsPatch.model_validate(typed.changes)
        updated = await database.run(
            change_settings,
            org_id=me.org.id,
            operator_id=me.operator.id,
            actor=me.operator.name,
            section=section,
            changes=patch.model_dump(exclude_unset=True),
            at=utcnow(),
        )
    except ValidationError as error:
        return None, field_errors(error, typed, known)
    cache.forget(me.org.id)
    return updated, {}


def _saved(before: Org, after: Org) -> str:
    lines = describe_changes(org_settings(before), org_settings(after))
    return "Saved: " + "; ".join(lines) + "." if lines else "Nothing changed."


def _settings_page(
    request: Request,
    me: Current,
    template: str,
    *,
    settings_section: str,
    title: str,
    status_code: int = 200,
    **context: Any,
) -> Response:
    return page(
        request,
        template,
        me=me,
        title=title,
        section="settings",
        settings_section=settings_section,
        status_code=status_code,
        **context,
    )


# --- General ------------------------------------------------------------------------------


def _general(
    request: Request,
    me: Current,
    org: Org,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    current = org_settings(org)
    return _settings_page(
        request,
        me,
        "settings.html",
        settings_section="general",
        title="Settings",
        groups=GENERAL,
        values=values or general_values(current),
        errors=errors or {},
        units=UNITS,
        max_spacing=MAX_SPACING,
        timezones=_TIMEZONES,
        labels=_GENERAL_LABELS,
        **extra,
    )


@router.get("/settings")
async def general_page(request: Request, me: OwnerDep) -> Response:
    """The org's settings in one form, in groups."""
    return _general(request, me, me.org)


@router.post("/settings")
async def save_general(
    request: Request, me: OwnerDep, database: DatabaseDep, cache: OrgCacheDep
) -> Response:
    """Save the General form: validated as the API validates, recorded in the audit list."""
    typed = _read_general(await request.form())
    updated, errors = await _save(
        me, database, cache, section="general", typed=typed, known=_GENERAL_LABELS
    )
    if updated is None:
        return _general(
            request,
            me,
            me.org,
            values=typed.values,
            errors=errors,
            status_code=422,
            error="Nothing was saved: fix the fields marked below.",
        )
    return _general(request, me, updated, notice=_saved(me.org, updated))


# --- Quiet hours --------------------------------------------------------------------------


def _quiet(
    request: Request,
    me: Current,
    org: Org,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    return _settings_page(
        request,
        me,
        "settings_quiet_hours.html",
        settings_section="quiet_hours",
        title="Quiet hours · Settings",
        channels=CHANNELS,
        values=values or quiet_values(org_settings(org)),
        errors=errors or {},
        timezone=org_settings(org).timezone,
        labels=_QUIET_LABELS,
        **extra,
    )


@router.get("/settings/quiet-hours")
async def quiet_hours_page(request: Request, me: OwnerDep) -> Response:
    """When each channel may send, in the customer's local time."""
    return _quiet(request, me, me.org)


@router.post("/settings/quiet-hours")
async def save_quiet_hours(
    request: Request, me: OwnerDep, database: DatabaseDep, cache: OrgCacheDep
) -> Response:
    """Save the send windows: validated as the API validates, recorded in the audit list."""
    typed = _read_quiet(await request.form())
    updated, errors = await _save(
        me, database, cache, section="quiet_hours", typed=typed, known=_QUIET_LABELS
    )
    if updated is None:
        return _quiet(
            request,
            me,
            me.org,
            values=typed.values,
            errors=_quiet_humane(errors),
            status_code=422,
            error="Nothing was saved: fix the windows marked below.",
        )
    return _quiet(request, me, updated, notice=_saved(me.org, updated))


# --- Provider mode ------------------------------------------------------------------------

#: What the operator of a dry-run deployment must set before an org can go live, and why.
LIVE_NEEDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("KEEPWARM_PROVIDER_MODE=live",), "the switch itself"),
    (("KEEPWARM_PUBLIC_URL",), "where providers send replies and delivery updates"),
    (("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"), "texts and WhatsApp"),
    (("RESEND_API_KEY", "RESEND_WEBHOOK_SECRET"), "emails"),
    (("VAPI_API_KEY", "VAPI_WEBHOOK_SECRET"), "calls"),
)


def _provider(
    request: Request,
    me: Current,
    org: Org,
    deployment: ProviderMode,
    *,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    current = org_settings(org)
    return _settings_page(
        request,
        me,
        "settings_provider_mode.html",
        settings_section="provider_mode",
        title="Provider mode · Settings",
        status_code=status_code,
        mode=current.provider_mode.value,
        deployment_live=deployment == ProviderMode.LIVE,
        senders=[
            ("Texts", current.sms_from),
            ("WhatsApp", current.whatsapp_from),
            ("Emails", current.email_from),
            ("Calls (Vapi phone number)", current.vapi_phone_number_id),
        ],
        live_needs=LIVE_NEEDS,
        **extra,
    )


@router.get("/settings/provider-mode")
async def provider_mode_page(request: Request, me: OwnerDep, settings: SettingsDep) -> Response:
    """Dry run or live, and what switching means."""
    return _provider(request, me, me.org, settings.provider_mode)


@router.post("/settings/provider-mode")
async def switch_provider_mode(
    request: Request,
    me: OwnerDep,
    database: DatabaseDep,
    cache: OrgCacheDep,
    settings: SettingsDep,
    mode: Annotated[ProviderMode, Form()],
) -> Response:
    """Switch the org to ``mode``; live only where the deployment itself runs live."""
    if mode == ProviderMode.LIVE and settings.provider_mode != ProviderMode.LIVE:
        return _provider(
            request,
            me,
            me.org,
            settings.provider_mode,
            status_code=422,
            error="Nothing changed: this deployment runs in dry run, so live is unavailable.",
        )
    typed = Typed(changes={"provider_mode": mode.value})
    updated, errors = await _save(
        me, database, cache, section="provider_mode", typed=typed, known=()
    )
    if updated is None:  # pragma: no cover - a valid mode always validates
        return _provider(
            request,
            me,
            me.org,
            settings.provider_mode,
            status_code=422,
            error="; ".join(errors.values()),
        )
    notice = (
        "Live: real messages and calls now go to customers."
        if mode == ProviderMode.LIVE
        else "Dry run: nothing goes to customers now; sends are simulated."
    )
    if org_settings(me.org).provider_mode == mode:
        notice = "Nothing changed: the org was already in " + (
            "live mode." if mode == ProviderMode.LIVE else "dry run."
        )
    return _provider(request, me, updated, settings.provider_mode, notice=notice)


# --- Changes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChangeRow:
    """One line of the audit list as the page shows it."""

    #: When, for ``<time datetime>``, and as shown (UTC, to the minute).
    at: str
    shown: str
    actor: str
    section: str
    summary: str


@router.get("/settings/changes")
async def changes_page(request: Request, me: OwnerDep, database: DatabaseDep) -> Response:
    """Who changed which setting and when, newest first."""
    changes = await database.read(settings_changes, org_id=me.org.id)
    rows = [
        ChangeRow(
            at=change.changed_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            shown=f"{change.changed_at.astimezone(UTC):%d %b %Y, %H:%M}",
            actor=change.actor,
            section=section_label(change.section),
            summary=change.summary,
        )
        for change in changes
    ]
    return _settings_page(
        request,
        me,
        "settings_changes.html",
        settings_section="changes",
        title="Changes · Settings",
        changes=rows,
    )
