"""Rendering the operators' pages: one Jinja2 environment (autoescape on), a whole page or
one block of it as an htmx fragment (jinja2-fragments), and the filters every page uses.

A page and its fragments render from one template: a live region re-fetches its block
through the same route and the same authorization as the page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from jinja2_fragments.fastapi import Jinja2Blocks
from markupsafe import Markup, escape
from starlette.responses import Response

from api.ui.static import vendor_url
from models.rules.payment_requests import money
from models.services.sign_in import Current

templates = Jinja2Blocks(directory=Path(__file__).with_name("templates"))

_VENDOR = {
    "htmx": ("htmx.org", "htmx.min.js"),
    "sse": ("htmx-ext-sse", "sse.min.js"),
    "idiomorph": ("idiomorph", "idiomorph-ext.min.js"),
    "pico": ("@picocss/pico", "pico.min.css"),
    "chart": ("chart.js", "chart.umd.min.js"),
}


def vendor(name: str) -> str:
    """The URL of a vendored browser file by its short name (``htmx``, ``pico``...)."""
    return vendor_url(*_VENDOR[name])


def _ago(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds < 60:
        return "just now" if seconds < 10 else f"{int(seconds)} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 86400)} d"


def when(moment: datetime | None, style: str = "auto") -> Markup:
    """``<time datetime=...>`` for ``moment`` in UTC, shown as a short time or date."""
    if moment is None:
        return Markup("<span class='muted'>—</span>")
    moment = moment.astimezone(UTC)
    now = datetime.now(UTC)
    if style == "ago":
        delta = (now - moment).total_seconds()
        shown = _ago(delta) + (" ago" if delta >= 10 else "")
        shown = "just now" if delta < 10 else shown
    elif moment.date() == now.date():
        shown = f"{moment:%H:%M}"
    elif moment.year == now.year:
        shown = f"{moment:%d %b %H:%M}"
    else:
        shown = f"{moment:%d %b %Y}"
    iso = moment.isoformat().replace("+00:00", "Z")
    title = f"{moment:%Y-%m-%d %H:%M:%S} UTC"
    return Markup('<time datetime="{}" title="{}">{}</time>').format(iso, title, shown)


def local_time(moment: datetime, zone: ZoneInfo) -> str:
    """``Tue 14 Jul 2026, 09:00``: ``moment`` as a clock in ``zone`` shows it."""
    shown = moment.astimezone(zone)
    return f"{shown:%a} {shown.day} {shown:%b %Y, %H:%M}"


def at_local(moment: datetime | None, zone: ZoneInfo) -> Markup:
    """``<time datetime=...>`` for ``moment``, shown in full in ``zone`` (a visit's time, in
    the org's timezone: the owner's clock, not UTC)."""
    if moment is None:
        return Markup("<span class='muted'>—</span>")
    iso = moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        iso, f"{local_time(moment, zone)} ({zone.key})", local_time(moment, zone)
    )


def countdown(due: datetime) -> Markup:
    """An SLA countdown the page's script ticks each second (not a live region)."""
    moment = due.astimezone(UTC)
    seconds = (moment - datetime.now(UTC)).total_seconds()
    shown = f"{_ago(seconds)} left" if seconds > 0 else f"breached {_ago(seconds)} ago"
    iso = moment.isoformat().replace("+00:00", "Z")
    return Markup('<time data-countdown datetime="{}">{}</time>').format(iso, escape(shown))


templates.env.globals["vendor"] = vendor
templates.env.filters["when"] = when
templates.env.filters["countdown"] = countdown
templates.env.filters["local"] = at_local
templates.env.filters["money"] = money


def page(
    request: Request,
    name: str,
    *,
    me: Current | None,
    block: str | None = None,
    status_code: int = 200,
    **context: Any,
) -> Response:
    """Render ``name`` (or just its ``block``, for an htmx fragment) for the signed-in ``me``."""
    values = {
        "me": me.operator if me else None,
        "org": me.org if me else None,
        "csrf": me.session.csrf_token if me else "",
        **context,
    }
    response: Response = templates.TemplateResponse(
        request, name, values, block_name=block, status_code=status_code
    )
    response.headers["Cache-Control"] = "no-store"
    return response
