"""The one keyset-cursor codec: a page's last sort key, opaque to clients, checked on the way
back in (``InvalidCursor`` for anything this server did not write)."""

from __future__ import annotations

import base64
import json
import math
from datetime import datetime
from typing import Any, Literal

from models.errors import InvalidCursor

#: What each value of a cursor must be: an aware time, a priority rank (0-3), an integer, a
#: finite number, or a row id.
CursorKind = Literal["time", "rank", "int", "number", "id"]


def encode_cursor(values: list[Any]) -> str:
    """An opaque cursor from the sort key of the last row of a page."""
    plain = [value.isoformat() if isinstance(value, datetime) else value for value in values]
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).decode()


def decode_cursor(cursor: str, *, kinds: tuple[CursorKind, ...]) -> list[Any]:
    """The sort key a cursor holds, each value checked against its kind (times parsed);
    ``InvalidCursor`` if it is not one this server wrote for this sort."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError:
        raise InvalidCursor("cursor is not valid") from None
    if not isinstance(values, list) or len(values) != len(kinds):
        raise InvalidCursor("cursor is not valid for this sort")
    return [_checked(kind, value) for kind, value in zip(kinds, values, strict=True)]


def _checked(kind: CursorKind, value: Any) -> Any:
    if kind == "time":
        try:
            value = datetime.fromisoformat(value)
        except (TypeError, ValueError):
            raise InvalidCursor("cursor is not valid") from None
        ok = value.tzinfo is not None
    elif kind == "rank":
        ok = type(value) is int and value in range(4)
    elif kind == "int":
        ok = type(value) is int
    elif kind == "number":
        try:
            ok = type(value) in (int, float) and math.isfinite(value := float(value))
        except OverflowError:
            ok = False
    else:
        ok = isinstance(value, str) and 0 < len(value) <= 64
    if not ok:
        raise InvalidCursor("cursor is not valid for this sort")
    return value


def like_pattern(text: str) -> str:
    """An ``ILIKE ... ESCAPE '\\'`` pattern finding ``text`` anywhere, wildcards taken
    literally (a search for ``50%`` or ``a_b`` finds just that)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
