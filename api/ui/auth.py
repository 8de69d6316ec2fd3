"""Signing in and out: ``/app/login``, ``/app/logout``, ``/app/invite/{token}``.

The forms before sign-in carry a random ``form_token`` that must match the ``kw_form``
cookie (double submit) and come from this site; sign-in is limited per address here and
per account in the database.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from api.deps import DatabaseDep, SettingsDep
from api.errors import ApiError
from api.sessions import (
    COOKIE,
    FORM_COOKIE,
    MaybeSessionDep,
    OperatorSessionDep,
    SignInLimiter,
    clear_session_cookie,
    same_origin,
    secure_cookies,
    set_session_cookie,
)
from api.ui.render import page
from models.errors import InviteInvalid, PasswordRejected
from models.services.sign_in import (
    INVITE_INVALID,
    SignedIn,
    accept_invite,
    invited,
    sign_in,
    sign_out,
)
from models.settings import Settings
from models.tables import utcnow

router = APIRouter(include_in_schema=False)

FormText = Annotated[str, Form(max_length=500)]
#: The same words whether the email has an account or not.
LOCKED = (
    "Too many wrong passwords for this email. Wait 15 minutes and try again, or ask the "
    "owner for a new invite link."
)
Password = Annotated[str, Form(max_length=1000)]


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of these pages only (no open redirect)."""
    if target and target.startswith("/app") and not target.startswith("//") and "\\" not in target:
        return target
    return "/app/inbox"


def _form_token(request: Request) -> str:
    return request.cookies.get(FORM_COOKIE) or secrets.token_urlsafe(24)


def _with_form_cookie(response: Response, token: str, settings: Settings) -> Response:
    response.set_cookie(
        FORM_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(settings),
        path="/app",
    )
    return response


def _check_form(request: Request, settings: Settings, form_token: str) -> None:
    expected = request.cookies.get(FORM_COOKIE, "")
    if not same_origin(request, settings) or not (
        expected and hmac.compare_digest(expected, form_token)
    ):
        raise ApiError(403, "The form has expired; reload the page and try again.", code="csrf")


def _signed_in(result: SignedIn, target: str, settings: Settings) -> Response:
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, result.token, settings)
    return response


@router.get("/")
async def root() -> RedirectResponse:
    """The front door: the inbox (via sign-in)."""
    return RedirectResponse("/app/inbox", status_code=303)


@router.get("/app/login")
async def login_page(
    request: Request, settings: SettingsDep, found: MaybeSessionDep, next: str | None = None
) -> Response:
    """The sign-in form (the inbox if already signed in)."""
    if found is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    token = _form_token(request)
    response = page(
        request,
        "login.html",
        me=None,
        title="Sign in",
        form_token=token,
        next=_safe_next(next),
        email="",
        notice="You are signed out." if request.query_params.get("out") else None,
    )
    return _with_form_cookie(response, token, settings)


@router.post("/app/login")
async def login(
    request: Request,
    settings: SettingsDep,
    database: DatabaseDep,
    email: FormText,
    password: Password,
    form_token: FormText,
    next: Annotated[str, Form(max_length=500)] = "/app/inbox",
) -> Response:
    """Sign in: a new session (the browser's old one ends), then where the person was going."""
    _check_form(request, settings, form_token)
    limiter: SignInLimiter = request.app.state.sign_in_limiter
    address = request.client.host if request.client else "unknown"
    wait = limiter.retry_after(address)

    def again(error: str, status_code: int) -> Response:
        response = page(
            request,
            "login.html",
            me=None,
            title="Sign in",
            form_token=form_token,
            next=_safe_next(next),
            email=email,
            error=error,
            status_code=status_code,
        )
        return response

    if wait is not None:
        response = again(
            f"Too many sign-in attempts from this network; try again in {wait // 60 + 1} min.",
            429,
        )
        response.headers["Retry-After"] = str(wait)
        return response
    if limiter.email_locked(email):
        return again(LOCKED, 429)
    result = await database.run(
        sign_in,
        email=email,
        password=password,
        now=utcnow(),
        user_agent=request.headers.get("user-agent"),
        replacing=request.cookies.get(COOKIE),
    )
    if isinstance(result, SignedIn):
        return _signed_in(result, _safe_next(next), settings)
    limiter.email_failed(email)
    if result.locked_until is not None or limiter.email_locked(email):
        return again(LOCKED, 429)
    return again("That email and password don't match an account.", 401)


@router.post("/app/logout")
async def logout(
    request: Request, me: OperatorSessionDep, settings: SettingsDep, database: DatabaseDep
) -> Response:
    """End this browser's session."""
    await database.run(sign_out, token=request.cookies.get(COOKIE, ""), now=utcnow())
    response = RedirectResponse("/app/login?out=1", status_code=303)
    clear_session_cookie(response, settings)
    return response


@router.get("/app/invite/{token}")
async def invite_page(
    request: Request, token: str, settings: SettingsDep, database: DatabaseDep
) -> Response:
    """Choose a password (a valid one-time invite link), or why the link no longer works."""
    operator = await database.run(invited, token=token[:100], now=utcnow())
    form = _form_token(request)
    response = page(
        request,
        "invite.html",
        me=None,
        title="Choose a password",
        operator=operator,
        invalid=None if operator else INVITE_INVALID,
        form_token=form,
        status_code=200 if operator else 404,
    )
    response.headers["Referrer-Policy"] = "no-referrer"
    return _with_form_cookie(response, form, settings)


@router.post("/app/invite/{token}")
async def accept(
    request: Request,
    token: str,
    settings: SettingsDep,
    database: DatabaseDep,
    password: Password,
    confirm: Password,
    form_token: FormText,
) -> Response:
    """Set the password and sign in; the link is used up."""
    _check_form(request, settings, form_token)
    now = utcnow()
    error: str | None = None
    if password != confirm:
        error = "The two passwords differ; type the same password twice."
    else:
        try:
            result = await database.run(
                accept_invite,
                token=token[:100],
                password=password,
                now=now,
                user_agent=request.headers.get("user-agent"),
            )
        except PasswordRejected as rejected:
            error = str(rejected)
        except InviteInvalid as invalid:
            return page(
                request,
                "invite.html",
                me=None,
                title="Choose a password",
                operator=None,
                invalid=str(invalid),
                status_code=404,
            )
        else:
            return _signed_in(result, "/app/inbox", settings)
    operator = await database.run(invited, token=token[:100], now=now)
    return page(
        request,
        "invite.html",
        me=None,
        title="Choose a password",
        operator=operator,
        invalid=None if operator else INVITE_INVALID,
        form_token=form_token,
        error=error,
        status_code=422,
    )
