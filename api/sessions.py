"""Operators' sessions in the browser: the cookie, who it signs in, and the checks every
state-changing request made with it must pass (same origin; htmx's header or the CSRF token).

The org API key never reaches a browser; a page acts as the session's operator only.
"""

from __future__ import annotations

import hmac
import math
import time
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request, Response
from fastapi.security import APIKeyCookie
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from api.deps import (
    BearerDep,
    DatabaseDep,
    OrgCacheDep,
    RateLimiterDep,
    SettingsDep,
    get_org,
)
from api.errors import ApiError, invalid
from models.rules.sign_in import SESSION_FOR
from models.services.sign_in import Current, current
from models.settings import Settings
from models.tables import Org, utcnow
from models.values import OperatorRole

#: The session cookie: an opaque random token; the database keeps its SHA-256.
COOKIE = "kw_session"
#: Before sign-in there is no session to hold a CSRF token: the sign-in and invite forms
#: carry this cookie's value back (double submit).
FORM_COOKIE = "kw_form"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


class NotSignedIn(Exception):
    """No live session on a request that needs one (pages redirect to sign-in)."""


def secure_cookies(settings: Settings) -> bool:
    """Cookies are ``Secure`` when the public URL is https."""
    return settings.effective_public_url.startswith("https://")


def set_session_cookie(response: Response, token: str, settings: Settings) -> None:
    """Sign the browser in with ``token`` (HttpOnly, SameSite=Lax, Secure on https)."""
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(SESSION_FOR.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=secure_cookies(settings),
        path="/",
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    """Forget the session cookie in the browser."""
    response.delete_cookie(
        COOKIE, httponly=True, samesite="lax", secure=secure_cookies(settings), path="/"
    )


def same_origin(request: Request, settings: Settings) -> bool:
    """Whether a request was made by a page of this site: ``Sec-Fetch-Site`` when the browser
    sends it, else ``Origin`` against the request's own host and the public URL."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return False
    host = urlsplit(origin).netloc
    allowed = {request.headers.get("host", ""), urlsplit(settings.effective_public_url).netloc}
    return host in allowed


async def check_unsafe(request: Request, settings: Settings, *, csrf_token: str | None) -> None:
    """A state-changing request from a browser: same origin, and htmx's ``HX-Request``
    header (a cross-site form can't set it) or the expected CSRF token in the form."""
    if request.method in _SAFE:
        return
    if not same_origin(request, settings):
        raise ApiError(403, "Cross-site requests are refused.", code="cross_site")
    if request.headers.get("hx-request") == "true":
        return
    header = request.headers.get("x-csrf-token")
    if csrf_token and header is not None and hmac.compare_digest(header, csrf_token):
        return
    form = await request.form()
    sent = form.get("csrf_token")
    if not csrf_token or not isinstance(sent, str) or not hmac.compare_digest(sent, csrf_token):
        raise ApiError(403, "The form has expired; reload the page and try again.", code="csrf")


#: Requests a page makes on its own: they don't keep a session from idling out.
_AUTOMATIC_PATHS = frozenset({"/app/heartbeat", "/app/events"})


def _by_a_person(request: Request) -> bool:
    """Whether a person made the request: a page load, a form, or an htmx request that a
    click, key or submit triggered (app.js marks those ``X-KW-User``), not a poll, a live
    refresh, the heartbeat or the event stream."""
    if request.url.path in _AUTOMATIC_PATHS or request.url.path.endswith("/viewing"):
        return False
    if request.headers.get("hx-request") != "true":
        return True
    return request.headers.get("x-kw-user") == "1"


async def session_of(request: Request, database: DatabaseDep) -> Current | None:
    """Who the request's session cookie signs in, if anyone."""
    token = request.cookies.get(COOKIE)
    if not token or len(token) > 100:
        return None
    return await database.run(current, token=token, now=utcnow(), activity=_by_a_person(request))


MaybeSessionDep = Annotated[Current | None, Depends(session_of)]


async def require_operator(
    request: Request, found: MaybeSessionDep, settings: SettingsDep
) -> Current:
    """The signed-in operator (``NotSignedIn`` otherwise); unsafe methods pass the
    same-origin and CSRF checks."""
    if found is None:
        raise NotSignedIn
    await check_unsafe(request, settings, csrf_token=found.session.csrf_token)
    return found


OperatorSessionDep = Annotated[Current, Depends(require_operator)]


class SignInLimiter:
    """Sign-in attempts per client address, in this API process (a moving window).

    Per-account locking lives in the database (``services.sign_in``); this stops one
    address from trying many accounts.
    """

    def __init__(self, *, per_15_minutes: int = 30, failures_per_email: int = 5) -> None:
        """Allow ``per_15_minutes`` attempts per address, and ``failures_per_email`` wrong
        passwords per email (known or not: an unknown email locks like a known one, so the
        lock tells nobody which emails have accounts)."""
        self._item = parse(f"{per_15_minutes}/15 minutes")
        self._failures = parse(f"{failures_per_email}/15 minutes")
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def email_locked(self, email: str) -> bool:
        """Whether ``email`` had too many wrong passwords lately."""
        return not self._limiter.test(self._failures, "email", email.strip().lower())

    def email_failed(self, email: str) -> None:
        """Count a wrong password for ``email``."""
        self._limiter.hit(self._failures, "email", email.strip().lower())

    def retry_after(self, address: str) -> int | None:
        """Count an attempt from ``address``: ``None`` if allowed, else seconds to wait."""
        if self._limiter.hit(self._item, "address", address):
            return None
        stats = self._limiter.get_window_stats(self._item, "address", address)
        return max(1, math.ceil(stats.reset_time - time.time()))


_session_cookie = APIKeyCookie(
    name=COOKIE,
    auto_error=False,
    scheme_name="OperatorSession",
    description="An operator's session from /app/login (pages): acts as that operator.",
)
SessionCookieDep = Annotated[str | None, Depends(_session_cookie)]


@dataclass(frozen=True)
class Actor:
    """Who acts on an ``/v1`` route: an org by its API key (naming an ``operator_id``), or a
    signed-in operator by their session (acting only as themselves)."""

    org: Org
    #: The session's operator; ``None`` with the org's API key.
    operator_id: str | None = None
    role: str | None = None

    def acting_operator(self, sent: str | None) -> str:
        """The operator who acts: the session's, or ``sent`` with the API key (422 if
        missing); a session naming someone else is 403."""
        if self.operator_id is None:
            if not sent:
                raise invalid("operator_id", "is required with an org API key")
            return sent
        if sent and sent != self.operator_id:
            raise ApiError(
                403,
                "A signed-in operator acts only as themselves; leave out operator_id.",
                code="not_yourself",
            )
        return self.operator_id

    def require_owner(self) -> None:
        """403 unless the API key or the owner's session."""
        if self.operator_id is not None and self.role != OperatorRole.OWNER:
            raise ApiError(403, "Only the owner can do this.", code="owner_only")


async def get_actor(
    request: Request,
    credentials: BearerDep,
    cookie: SessionCookieDep,
    database: DatabaseDep,
    settings: SettingsDep,
    cache: OrgCacheDep,
    limiter: RateLimiterDep,
) -> Actor:
    """The org's API key (as before), else an operator's session; 401 with neither."""
    if credentials is not None or not cookie:
        return Actor(org=await get_org(credentials, database, settings, cache, limiter))
    found = await database.run(current, token=cookie[:100], now=utcnow())
    if found is None:
        raise ApiError(401, "The session has ended; sign in again at /app/login.")
    await check_unsafe(request, settings, csrf_token=found.session.csrf_token)
    limiter.check(found.org.id)
    return Actor(org=found.org, operator_id=found.operator.id, role=found.operator.role)


ActorDep = Annotated[Actor, Depends(get_actor)]
