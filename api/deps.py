"""Dependencies: settings, database runner, Temporal client, the authenticated org."""

from __future__ import annotations

import asyncio
import functools
import hmac
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from pydantic import AfterValidator, BeforeValidator
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from api.errors import ApiError, invalid
from api.temporal import unavailable
from models.database import transaction
from models.reads.orgs import org_for_key_hash
from models.rules.orgs import hash_api_key
from models.schemas import TEXT_PATTERN, check_date_time, check_text
from models.settings import Settings
from models.tables import Org
from workers.client import connect

T = TypeVar("T")


class Database:
    """Runs synchronous data functions on a worker thread, one transaction each."""

    def __init__(self, engine: Engine) -> None:
        """Use ``engine``."""
        self.engine = engine

    async def run(self, fn: Callable[..., T], /, **kwargs: Any) -> T:
        """``fn(session, **kwargs)`` in a thread, committed if it returns (a deadlock or a
        serialization failure is retried, bounded: ``models.database.transaction``)."""

        return await run_in_threadpool(functools.partial(transaction, self.engine, fn, **kwargs))

    async def read(self, fn: Callable[..., T], /, **kwargs: Any) -> T:
        """``fn(session, **kwargs)`` in a thread, in a read-only transaction whose statements
        all see the same moment (a page of several queries never mixes before and after a
        change)."""
        return await run_in_threadpool(
            functools.partial(transaction, self.engine, fn, snapshot=True, **kwargs)
        )


class TemporalConnection:
    """A lazily (re)connected Temporal client, so the API starts even when Temporal is down."""

    def __init__(self, settings: Settings) -> None:
        """Connect with ``settings`` on first use."""
        self._settings = settings
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    async def client(self) -> Client:
        """The client; 503 if Temporal can't be reached."""
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                try:
                    self._client = await asyncio.wait_for(connect(self._settings), timeout=5)
                except Exception as error:
                    raise unavailable() from error
            return self._client


class OrgCache:
    """Orgs by API-key hash for a few seconds, so intake doesn't read the org on every request.

    A change made through this process (``PATCH /v1/orgs/me``) drops the entry at once; one
    made through another process is seen within ``ttl``. Unknown keys are never cached.
    """

    def __init__(self, *, ttl: float = 10.0, max_size: int = 10_000) -> None:
        """Keep entries ``ttl`` seconds, at most ``max_size`` of them."""
        self._ttl = ttl
        self._max_size = max_size
        self._entries: dict[str, tuple[float, Org]] = {}

    def get(self, key_hash: str) -> Org | None:
        """The cached org for a key hash, if fresh."""
        entry = self._entries.get(key_hash)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key_hash: str, org: Org) -> None:
        """Remember ``org`` for ``key_hash``."""
        if len(self._entries) >= self._max_size:
            self._entries.clear()
        self._entries[key_hash] = (time.monotonic() + self._ttl, org)

    def forget(self, org_id: str) -> None:
        """Drop every entry of ``org_id``."""
        for key_hash in [k for k, (_, org) in self._entries.items() if org.id == org_id]:
            self._entries.pop(key_hash, None)


class RateLimiter:
    """Requests per org per minute, in this API process (a moving window)."""

    def __init__(self, *, per_minute: int) -> None:
        """Allow ``per_minute`` requests per org; 0 turns the limit off."""
        self._item = parse(f"{per_minute}/minute") if per_minute else None
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def check(self, org_id: str) -> None:
        """Count a request of ``org_id``; 429 with ``Retry-After`` over the limit."""
        if self._item is None or self._limiter.hit(self._item, org_id):
            return
        stats = self._limiter.get_window_stats(self._item, org_id)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise ApiError(
            429,
            f"Too many requests for this org; retry in {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
        )


#: How long a query to a workflow may take before the API answers without it.
QUERY_TIMEOUT = timedelta(seconds=2)


def _from_state(name: str, kind: type[T]) -> Callable[[Request], T]:
    """A dependency answering the object the app's lifespan put in ``app.state.<name>``."""

    def dependency(request: Request) -> T:
        value: T = getattr(request.app.state, name)
        return value

    dependency.__name__ = f"app_{name}"
    return dependency


async def get_temporal(request: Request) -> Client:
    """The app's Temporal client (503 if Temporal can't be reached)."""
    connection: TemporalConnection = request.app.state.temporal
    return await connection.client()


SettingsDep = Annotated[Settings, Depends(_from_state("settings", Settings))]
DatabaseDep = Annotated[Database, Depends(_from_state("database", Database))]
OrgCacheDep = Annotated[OrgCache, Depends(_from_state("org_cache", OrgCache))]
RateLimiterDep = Annotated[RateLimiter, Depends(_from_state("rate_limiter", RateLimiter))]
#: For routes that can answer without Temporal (they ask for the client themselves).
TemporalConnectionDep = Annotated[
    TemporalConnection, Depends(_from_state("temporal", TemporalConnection))
]
TemporalDep = Annotated[Client, Depends(get_temporal)]

_bearer = HTTPBearer(auto_error=False)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]

_UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


async def get_org(
    credentials: BearerDep,
    database: DatabaseDep,
    settings: SettingsDep,
    cache: OrgCacheDep,
    limiter: RateLimiterDep,
) -> Org:
    """The org whose API key is on the request; 401 without a valid key, 403 for the admin token."""
    if credentials is None:
        raise ApiError(
            401, "Send your org API key as 'Authorization: Bearer <key>'.", headers=_UNAUTHORIZED
        )
    key_hash = hash_api_key(credentials.credentials)
    org = cache.get(key_hash)
    if org is None:
        org = await database.run(org_for_key_hash, key_hash=key_hash)
        if org is not None:
            cache.put(key_hash, org)
    if org is None:
        if _is_admin(credentials.credentials, settings):
            raise ApiError(403, "The admin token can only create orgs; use an org API key here.")
        raise ApiError(401, "The API key is not valid.", headers=_UNAUTHORIZED)
    limiter.check(org.id)
    return org


async def require_admin(
    credentials: BearerDep, database: DatabaseDep, settings: SettingsDep
) -> None:
    """Admin routes: the admin token passes; an org key gets 403; anything else 401."""
    if credentials is None:
        raise ApiError(
            401, "Send the admin token as 'Authorization: Bearer <token>'.", headers=_UNAUTHORIZED
        )
    if _is_admin(credentials.credentials, settings):
        return
    key_hash = hash_api_key(credentials.credentials)
    if await database.run(org_for_key_hash, key_hash=key_hash) is not None:
        raise ApiError(403, "An org API key can't do this; it needs the admin token.")
    raise ApiError(401, "The admin token is not valid.", headers=_UNAUTHORIZED)


def _is_admin(token: str, settings: Settings) -> bool:
    admin = settings.admin_token
    return admin is not None and hmac.compare_digest(
        token.encode(), admin.get_secret_value().encode()
    )


OrgDep = Annotated[Org, Depends(get_org)]

#: Query and path strings from outside: bounded, no control characters.
_NO_CONTROL = {"pattern": TEXT_PATTERN}
QueryText = Annotated[
    str | None,
    Query(max_length=200, json_schema_extra=_NO_CONTROL),
    AfterValidator(check_text),
]
IdParam = Annotated[
    str, Path(max_length=64, json_schema_extra=_NO_CONTROL), AfterValidator(check_text)
]
QueryId = Annotated[
    str | None,
    Query(max_length=64, json_schema_extra=_NO_CONTROL),
    AfterValidator(lambda v: v and check_text(v)),
]
AdminDep = Annotated[None, Depends(require_admin)]

_WINDOW_START = "Start of the window (inclusive): an RFC 3339 date-time with its offset."
_WINDOW_END = "End of the window (exclusive): an RFC 3339 date-time, after `from`."


@dataclass(frozen=True)
class TimeWindow:
    """``[from, to)``, either end open."""

    start: datetime | None
    end: datetime | None


def time_window(
    start: Annotated[
        datetime | None,
        Query(alias="from", description=_WINDOW_START),
        BeforeValidator(check_date_time),
    ] = None,
    end: Annotated[
        datetime | None,
        Query(alias="to", description=_WINDOW_END),
        BeforeValidator(check_date_time),
    ] = None,
) -> TimeWindow:
    """The ``from`` and ``to`` query parameters; 422 unless ``to`` is after ``from``."""
    if start is not None and end is not None and end <= start:
        raise invalid("to", "must be after from")
    return TimeWindow(start=start, end=end)


WindowDep = Annotated[TimeWindow, Depends(time_window)]
