"""CSV behind every chart: content negotiation (``Accept: text/csv``) and the writing of one
table, the same rows and figures the JSON answer holds.

A cell of text that a spreadsheet would run as a formula (it starts with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return) is written with a leading ``'`` (OWASP's advice on CSV
injection): a lead's source is whatever a web form sent. Numbers are written as JSON writes
them, so a negative number stays a number.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from fastapi import Request, Response

CSV_MEDIA_TYPE = "text/csv"
JSON_MEDIA_TYPE = "application/json"
#: Cell prefixes a spreadsheet reads as the start of a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _ranges(accept: str) -> list[tuple[str, float]]:
    """The media ranges of an ``Accept`` header with their quality (1 unless given)."""
    ranges = []
    for part in accept.split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        if not media:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranges.append((media.lower(), quality))
    return ranges


def _preference(media_type: str, ranges: list[tuple[str, float]]) -> tuple[float, int]:
    """How much the client wants ``media_type``: the quality of the most specific range that
    matches it, and how specific that range is (exact 2, ``type/*`` 1, ``*/*`` 0)."""
    kind = media_type.split("/")[0]
    best: tuple[int, float] | None = None
    for media, quality in ranges:
        specificity = (
            2 if media == media_type else 1 if media == f"{kind}/*" else 0 if media == "*/*" else -1
        )
        if specificity >= 0 and (best is None or specificity > best[0]):
            best = (specificity, quality)
    return (0.0, -1) if best is None else (best[1], best[0])


def wants_csv(request: Request) -> bool:
    """Whether the request's ``Accept`` prefers CSV to JSON (JSON on a tie, and when the
    header is missing or names neither)."""
    ranges = _ranges(request.headers.get("accept", ""))
    csv_wanted, json_wanted = (
        _preference(CSV_MEDIA_TYPE, ranges),
        _preference(JSON_MEDIA_TYPE, ranges),
    )
    return csv_wanted[0] > 0 and csv_wanted > json_wanted


def cell(value: Any) -> str:
    """One value as a CSV cell: empty for null, ``true``/``false``, numbers as JSON writes
    them, times in ISO 8601, and text that could start a formula behind a ``'``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    text = str(value)
    return f"'{text}" if text.startswith(FORMULA_PREFIXES) else text


def csv_text(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """A header row of ``columns``, then each row's values in that order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([cell(row.get(column)) for column in columns])
    return buffer.getvalue()


def filename(*parts: str | datetime | None) -> str:
    """A download's name from its parts (a report, a table, the window's ends): safe
    characters only, ``.csv`` at the end."""
    words = [
        part.strftime("%Y-%m-%dT%H%M%SZ") if isinstance(part, datetime) else part
        for part in parts
        if part
    ]
    return _SAFE_NAME.sub("_", "-".join(words)) + ".csv"


def csv_response(
    columns: Sequence[str], rows: Iterable[Mapping[str, Any]], *, name: str
) -> Response:
    """A ``text/csv`` answer, downloaded as ``name``."""
    return Response(
        content=csv_text(columns, rows),
        media_type=f"{CSV_MEDIA_TYPE}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def csv_openapi(description: str) -> dict[int | str, dict[str, Any]]:
    """The ``200`` a route that can answer CSV adds to its JSON one (``responses=``)."""
    return {
        200: {
            "description": description,
            "content": {CSV_MEDIA_TYPE: {"schema": {"type": "string"}}},
            "headers": {
                "Content-Disposition": {
                    "description": '`attachment; filename="...csv"` on a CSV answer.',
                    "schema": {"type": "string"},
                }
            },
        }
    }
