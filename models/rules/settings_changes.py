"""How a change to an org's settings reads in the Settings pages' audit list: the section it
belongs to, each setting's name in plain words, and one "before → after" line per setting that
changed ("Provider mode: dry run → live", "Quiet hours SMS: 08:00 to 21:00 → 09:00 to 20:00",
written with an en dash). Pure.

Nothing here is a secret, but a heartbeat URL carries its check's private id, so the list
says only that it was set, changed or removed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from enum import Enum
from typing import Any

from models.schemas import OrgSettings

#: What the audit list calls each section a change is filed under.
SECTIONS = {
    "general": "General",
    "quiet_hours": "Quiet hours",
    "sequences": "Sequences",
    "scoring": "Scoring",
    "provider_mode": "Provider mode",
    "alerts": "Alerts",
}
#: A patch that touches only one of these settings is filed under its own section.
_OWN_SECTIONS = ("quiet_hours", "provider_mode", "scoring", "alerts")
#: How long an audit entry's summary may be (``settings_changes.summary``).
SUMMARY_LIMIT = 500
#: A free-text value longer than this is cut short in a summary.
_TEXT_LIMIT = 60
#: So is a whole value (a list of addresses, of value tiers) longer than this.
_VALUE_LIMIT = 90

#: Each setting's name, by its path in the settings document.
LABELS: dict[str, str] = {
    "timezone": "Timezone",
    "default_region": "Default region",
    "provider_mode": "Provider mode",
    "sms_from": "SMS sender",
    "whatsapp_from": "WhatsApp sender",
    "email_from": "Email sender",
    "vapi_assistant_id": "Vapi assistant",
    "vapi_phone_number_id": "Vapi phone number",
    "whatsapp_template_sid": "WhatsApp template",
    "quiet_hours.sms": "Quiet hours SMS",
    "quiet_hours.whatsapp": "Quiet hours WhatsApp",
    "quiet_hours.voice": "Quiet hours voice",
    "quiet_hours.email": "Quiet hours email",
    "quiet_hours.weekdays_only": "Quiet hours weekdays only",
    "touch_budget.per_24h": "Touches per person per 24 h",
    "touch_budget.calls_per_subject_per_24h": "Calls per person per 24 h",
    "inactivity_threshold": "Inactivity threshold",
    "call_policy.max_attempts": "Call attempts",
    "call_policy.spacing": "Waits between calls",
    "sla.urgent": "SLA urgent",
    "sla.high": "SLA high",
    "sla.medium": "SLA medium",
    "sla.low": "SLA low",
    "takeover_timeout": "Takeover timeout",
    "vip_value": "VIP value",
    "help_reply": "Help reply",
    "scoring.base": "Scoring base points",
    "scoring.value_tiers": "Scoring value tiers",
    "scoring.sources": "Scoring source",
    "scoring.words": "Scoring word",
    "scoring.returning_customer": "Scoring returning customer",
    "scoring.thresholds.high_value": "Scoring threshold high value",
    "scoring.thresholds.engaged": "Scoring threshold engaged",
    "scoring.thresholds.window_shopper": "Scoring threshold window shopper",
    "scoring.requests": "Scoring request words",
    "alerts.email": "Alert emails",
    "alerts.sms": "Alert SMS numbers",
    "alerts.sms_per_month": "Alert texts per month",
    "alerts.speed_to_lead_target": "Speed-to-lead target",
    "alerts.heartbeat_url": "Heartbeat URL",
    "unit_prices.sms": "SMS price",
    "unit_prices.whatsapp": "WhatsApp price",
    "unit_prices.email": "Email price",
    "unit_prices.currency": "Price currency",
    "pacing.sms": "SMS sends a second",
    "pacing.whatsapp": "WhatsApp sends a second",
    "pacing.email": "Emails a second",
    "pacing.calls": "Calls a second",
}
#: Settings keyed by a phrase (a source, a word): one line per phrase added, removed or changed.
_PHRASE_MAPS = frozenset({"scoring.sources", "scoring.words"})
#: What ``None`` means, where it means something.
_NONE = {
    **{f"quiet_hours.{channel}": "any time" for channel in ("sms", "whatsapp", "voice", "email")},
    "vip_value": "no VIP rule",
    **{f"pacing.{channel}": "unpaced" for channel in ("sms", "whatsapp", "email", "calls")},
}
#: Free text, quoted in a summary.
_QUOTED = frozenset({"help_reply"})
_MODES = {"dry_run": "dry run", "live": "live"}
_EN_DASH = "\N{EN DASH}"


def section_label(section: str) -> str:
    """A section's name on the pages (an unknown one from its id)."""
    return SECTIONS.get(section, section.replace("_", " ").capitalize())


def section_of(changes: Mapping[str, object]) -> str:
    """The section a patch of the settings is filed under: its one setting's own section
    (quiet hours, provider mode, scoring, alerts), else ``general``."""
    if len(changes) == 1:
        (key,) = changes
        if key in _OWN_SECTIONS:
            return key
    return "general"


def human_duration(value: timedelta) -> str:
    """``value`` in words a person reads at a glance: ``5 min``, ``2 h``, ``1 day 2 h``."""
    seconds = value.total_seconds()
    negative, seconds = seconds < 0, abs(seconds)
    days, rest = divmod(int(seconds), 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, whole_seconds = divmod(rest, 60)
    fraction = seconds - int(seconds)
    parts = []
    if days:
        parts.append(f"{days} day{'' if days == 1 else 's'}")
    if hours:
        parts.append(f"{hours} h")
    if minutes:
        parts.append(f"{minutes} min")
    if whole_seconds or fraction:
        parts.append(f"{whole_seconds + fraction:g} s")
    shown = " ".join(parts) or "0 s"
    return f"-{shown}" if negative else shown


def plain_number(value: float) -> str:
    """``value`` written out in full, as short as it reads back the same (``1000``, ``0.0079``,
    ``1234567``), never rounded or in exponent form."""
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        text = f"{value:.20f}".rstrip("0").rstrip(".")
    return text


def _label(path: str) -> str:
    return LABELS.get(path) or path.replace(".", " ").replace("_", " ").capitalize()


def _text(value: str, limit: int = _TEXT_LIMIT) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _shown(path: str, value: Any) -> str:
    """One setting's value in a summary."""
    if value is None or value == []:
        return _NONE.get(path, "none")
    if path.startswith("quiet_hours.") and isinstance(value, list | tuple) and len(value) == 2:
        return f"{value[0]}{_EN_DASH}{value[1]}"
    if path == "scoring.value_tiers":
        return ", ".join(f"from {plain_number(tier['min'])}: {tier['points']:+d}" for tier in value)
    if isinstance(value, list | tuple):
        return ", ".join(_shown("", item) for item in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, timedelta):
        return human_duration(value)
    if isinstance(value, Enum):
        value = value.value
    if path == "provider_mode":
        return _MODES.get(str(value), str(value))
    if isinstance(value, float):
        return plain_number(value)
    text = _text(str(value))
    return f"“{text}”" if path in _QUOTED else text


def _leaf(path: str, before: Any, after: Any) -> list[str]:
    if before == after:
        return []
    if path == "alerts.heartbeat_url":
        said = "set" if before is None else ("removed" if after is None else "changed")
        return [f"{_label(path)}: {said}"]
    was, now = (_text(_shown(path, value), _VALUE_LIMIT) for value in (before, after))
    return [f"{_label(path)}: {was} → {now}"]


def _phrases(path: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    lines = []
    for key in [*before, *(k for k in after if k not in before)]:
        label = f"{_label(path)} “{_text(key)}”"
        if key not in after:
            lines.append(f"{label}: removed (was {before[key]:+d})")
        elif key not in before:
            lines.append(f"{label}: added, {after[key]:+d}")
        elif before[key] != after[key]:
            lines.append(f"{label}: {before[key]:+d} → {after[key]:+d}")
    return lines


def _walk(path: str, before: Any, after: Any) -> list[str]:
    if path in _PHRASE_MAPS and isinstance(before, Mapping) and isinstance(after, Mapping):
        return _phrases(path, before, after)
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        lines = []
        for key in [*before, *(k for k in after if k not in before)]:
            inner = f"{path}.{key}" if path else str(key)
            lines += _walk(inner, before.get(key), after.get(key))
        return lines
    return _leaf(path, before, after)


def describe_changes(before: OrgSettings, after: OrgSettings) -> list[str]:
    """One line per setting that differs between ``before`` and ``after``, in the settings'
    own order; none when nothing changed."""
    return _walk("", before.model_dump(), after.model_dump())


def summarize(lines: Sequence[str], *, limit: int = SUMMARY_LIMIT) -> str:
    """``lines`` as one audit summary of at most ``limit`` characters; lines that don't fit
    are counted at the end ("… and 3 more")."""
    shown: list[str] = []
    for index, line in enumerate(lines):
        rest = len(lines) - index - 1
        tail = f"; and {rest} more" if rest else ""
        candidate = "; ".join([*shown, line])
        if len(candidate + tail) <= limit:
            shown.append(line)
            continue
        left = len(lines) - len(shown)
        more = f"and {left} more" if shown else f"{left} settings changed"
        return "; ".join([*shown, more])[:limit]
    return "; ".join(shown)
