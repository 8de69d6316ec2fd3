"""A local fake of the Twilio, Resend, Vapi and Stripe HTTP APIs.

The real provider SDKs are pointed at this server in tests (the providers cannot be
reached from CI) and in demos. It serves one Starlette app on ``127.0.0.1`` from a
background thread, records every request, stores what it creates, honours
idempotency keys like the providers do, and can be told to fail, stall or go down for a
while, revoke the credentials (every request answered 401 until restored) or suspend the
Twilio account. It also builds the signed webhooks the providers send (Twilio form posts,
Resend's Svix-signed events, Vapi server messages, Stripe events) for tests to deliver.

The credential probes' reads are served too: Twilio's account fetch, Stripe's balance,
Resend's domain list and Vapi's phone-number list.

How each SDK is pointed at it::

    fake = FakeProviders().start()

    client = twilio.rest.Client(account_sid, auth_token)
    client.api.base_url = fake.twilio_base_url

    resend.api_key = "re_test"
    resend.api_url = fake.resend_base_url

    vapi_client = vapi.Vapi(token="vapi-token", base_url=fake.vapi_base_url)

    stripe_client = stripe.StripeClient(
        "sk_test_123", base_addresses={"api": fake.stripe_base_url}
    )

Run it standalone with ``python -m tests.fakes.providers --port 8900``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import copy
import email.utils
import hashlib
import hmac
import itertools
import json
import re
import secrets
import socket
import string
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from types import TracebackType
from typing import Any, Literal, Self, get_args
from urllib.parse import parse_qsl, urlencode

import stripe
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

Provider = Literal["twilio", "resend", "vapi", "stripe"]
#: Every provider the fake serves, in a stable order.
PROVIDERS: tuple[Provider, ...] = get_args(Provider)
#: How a Vapi webhook is authenticated: the ``x-vapi-secret`` header, or an HMAC.
VapiSigning = Literal["secret", "hmac"]
#: The Twilio Advanced Opt-Out keyword types of an inbound message.
TwilioOptOutType = Literal["STOP", "START", "HELP"]

JsonObject = dict[str, Any]

TWILIO_API_VERSION = "2010-04-01"
_TWILIO_PREFIX = f"/twilio/{TWILIO_API_VERSION}/Accounts/{{account_sid}}"
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
#: A Twilio Content API template SID.
_CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_STRIPE_KEY_PART = re.compile(r"\[([^\]]*)\]")
_BASE62 = string.ascii_letters + string.digits

#: Default messages for the Twilio error codes tests are most likely to inject.
TWILIO_ERROR_MESSAGES: dict[int, str] = {
    10001: "Account is not active",
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    20503: "Service Unavailable",
    21211: "Invalid 'To' Phone Number",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the "
    "'To' number",
    21602: "Message body is required.",
    21603: "A 'From' or 'MessagingServiceSid' parameter is required to send a message",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number is not a valid mobile number",
    21654: "ContentSid Required",
    21655: "The ContentSid is Invalid",
    21656: "The ContentVariables Parameter is invalid",
    30007: "Message filtered",
}


# --------------------------------------------------------------------------------------
# Public records
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received, as the SDK sent it.

    Attributes:
        provider: Which provider's API was called.
        method: The HTTP method, upper case.
        path: The full request path, including the provider prefix
            (``/twilio/...``, ``/resend/...``, ``/vapi/...``, ``/v1/...``).
        headers: Request headers with lower-cased names.
        query: Query-string parameters (the last value wins for repeated names).
        form: The form-encoded body (last value wins), or None if the body was not a form.
        json: The decoded JSON body, or None if the body was not JSON.
        at: When the request arrived (UTC).
        status: The HTTP status the fake answered with.
        failed: Whether the answer was an error (status >= 400), injected or not.
        injected: Whether the answer came from :meth:`FakeProviders.fail_next`,
            :meth:`FakeProviders.outage` or :meth:`FakeProviders.revoke_credentials`.
    """

    provider: Provider
    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    form: dict[str, str] | None
    json: Any
    at: datetime
    status: int
    failed: bool
    injected: bool

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        """The ``(username, password)`` of HTTP basic auth, if the request used it."""
        return _basic_auth(self.headers)

    @property
    def bearer_token(self) -> str | None:
        """The bearer token of the ``Authorization`` header, if the request used one."""
        return _bearer_token(self.headers)

    @property
    def idempotency_key(self) -> str | None:
        """The ``Idempotency-Key`` header, if the request sent one."""
        return self.headers.get("idempotency-key")


@dataclass(frozen=True)
class Webhook:
    """A provider webhook the test should deliver to the app under test.

    Post ``body`` as is, with ``headers``: the signature covers those exact bytes, so
    re-encoding the JSON (``json=hook.json()``) would not verify::

        response = client.post(hook.url, content=hook.body, headers=hook.headers)

    Attributes:
        url: Where the provider would POST it.
        form: The form fields of a form-encoded webhook (Twilio); None for a JSON one.
        headers: Headers to send: the provider's signature headers and ``Content-Type``.
        body: The exact bytes to POST: the urlencoded form, or the JSON document.
    """

    url: str
    form: dict[str, str] | None
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """Return the decoded JSON body, or None for a form-encoded webhook."""
        return None if self.form is not None else json.loads(self.body)


def twilio_signature_headers(
    url: str, params: Mapping[str, str], auth_token: str
) -> dict[str, str]:
    """Build the headers Twilio sends with a signed form-encoded webhook.

    Args:
        url: The full URL the webhook is delivered to, as the app will see it.
        params: The form fields of the webhook.
        auth_token: The Twilio auth token that signs it.

    Returns:
        ``X-Twilio-Signature`` and ``Content-Type`` headers.
    """
    signature = RequestValidator(auth_token).compute_signature(url, dict(params))
    return {
        "X-Twilio-Signature": str(signature),
        "Content-Type": "application/x-www-form-urlencoded",
    }


def new_resend_webhook_secret() -> str:
    """Return a fresh Resend (Svix) signing secret: ``whsec_`` + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def svix_signature(secret: str, svix_id: str, timestamp: int | str, body: bytes) -> str:
    """Sign a webhook the way Svix does for Resend (the ``svix-signature`` header value).

    ``"v1," + base64(HMAC-SHA256(key, f"{svix_id}.{timestamp}.{body}"))`` where ``key`` is
    the base64-decoded part of ``secret`` after ``whsec_``.

    Args:
        secret: The endpoint's signing secret, ``whsec_<base64>``.
        svix_id: The ``svix-id`` header (``msg_...``).
        timestamp: The ``svix-timestamp`` header, unix seconds.
        body: The exact request body.

    Returns:
        The header value, e.g. ``v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=``.
    """
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{svix_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def vapi_signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """Sign a Vapi server message with an HMAC credential's defaults (``x-signature``).

    ``hex(HMAC-SHA256(secret, f"{timestamp}.{body}"))``: algorithm sha256, hex encoding,
    payload format ``{timestamp}.{body}``, no prefix.

    Args:
        secret: The credential's secret key.
        timestamp: The ``x-timestamp`` header, unix seconds.
        body: The exact request body.

    Returns:
        The lower-case hex digest.
    """
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def stripe_signature_header(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """Build a ``Stripe-Signature`` header with the Stripe SDK's own test helper.

    ``t=<timestamp>,v1=<hex HMAC-SHA256(secret, f"{t}.{payload}")>``.

    Args:
        payload: The exact request body.
        secret: The endpoint's signing secret (``whsec_...``, used as is).
        timestamp: Unix seconds; defaults to now.

    Returns:
        The header value.
    """
    header = stripe.WebhookSignature.generate_signature_header(
        payload.decode("utf-8"), secret, timestamp
    )
    return str(header)


def _form_webhook(url: str, form: dict[str, str], auth_token: str) -> Webhook:
    headers = twilio_signature_headers(url, form, auth_token)
    return Webhook(url, form, headers, urlencode(form).encode())


def _json_body(document: Any, *, indent: int | None = None) -> bytes:
    separators = None if indent else (",", ":")
    return json.dumps(document, indent=indent, separators=separators).encode()


def _vapi_headers(
    body: bytes, secret: str, mode: VapiSigning, timestamp: int | None
) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if mode == "secret":
        return headers | {"x-vapi-secret": secret}
    if mode == "hmac":
        stamp = int(time.time()) if timestamp is None else timestamp
        return headers | {
            "x-timestamp": str(stamp),
            "x-signature": vapi_signature(secret, stamp, body),
        }
    raise ValueError(f"unknown Vapi signing mode {mode!r}; use 'secret' or 'hmac'")


# --------------------------------------------------------------------------------------
# Internals: plans, incoming requests, replies
# --------------------------------------------------------------------------------------


@dataclass
class _FailurePlan:
    status: int
    remaining: int
    retry_after: int | str | None
    error_code: int | str | None
    message: str | None


@dataclass
class _DelayPlan:
    seconds: float
    remaining: int


@dataclass
class _Outage:
    until: float  # time.monotonic()
    status: int
    retry_after: int | str | None


@dataclass(frozen=True)
class _Incoming:
    provider: Provider
    method: str
    path: str
    path_params: dict[str, str]
    headers: dict[str, str]
    query: dict[str, str]
    form: dict[str, str] | None
    form_pairs: list[tuple[str, str]]
    json: Any | None
    json_error: bool
    raw_query: str


@dataclass(frozen=True)
class _Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _StoredReply:
    fingerprint: str
    reply: _Reply


_Handler = Callable[[_Incoming], _Reply]


def _basic_auth(headers: Mapping[str, str]) -> tuple[str, str] | None:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None


def _bearer_token(headers: Mapping[str, str]) -> str | None:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _random_id(length: int) -> str:
    return "".join(secrets.choice(_BASE62) for _ in range(length))


def _now() -> datetime:
    return datetime.now(UTC)


def _rfc2822(moment: datetime) -> str:
    return email.utils.format_datetime(moment)


def _iso_millis(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _fingerprint(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _email_address(value: str) -> str:
    match = re.search(r"<([^<>]+)>\s*$", value)
    return (match.group(1) if match else value).strip()


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _stripe_scalar(value: str) -> Any:
    if value in {"true", "false"}:
        return value == "true"
    if value.isdigit() and (value == "0" or not value.startswith("0")):
        return int(value)
    return value


def _stripe_listify(value: Any, *, in_metadata: bool = False) -> Any:
    if isinstance(value, dict):
        converted = {
            key: _stripe_listify(item, in_metadata=in_metadata or key == "metadata")
            for key, item in value.items()
        }
        if converted and all(key.isdigit() for key in converted):
            return [converted[key] for key in sorted(converted, key=int)]
        return converted
    if isinstance(value, str) and not in_metadata:
        return _stripe_scalar(value)
    return value


def stripe_params(pairs: Iterable[tuple[str, str]]) -> JsonObject:
    """Decode Stripe's bracketed form encoding into nested values.

    ``metadata[lead_id]=7`` becomes ``{"metadata": {"lead_id": "7"}}`` and
    ``line_items[0][quantity]=1`` becomes ``{"line_items": [{"quantity": 1}]}``.
    Digit strings and ``true``/``false`` outside ``metadata`` become ints and bools.

    Args:
        pairs: The decoded form pairs in order.

    Returns:
        The nested parameters.
    """
    root: JsonObject = {}
    for key, value in pairs:
        head, bracket, rest = key.partition("[")
        parts = [head, *_STRIPE_KEY_PART.findall(bracket + rest)]
        node: Any = root
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = value
    result = _stripe_listify(root)
    return result if isinstance(result, dict) else {}


# --------------------------------------------------------------------------------------
# State and request handling
# --------------------------------------------------------------------------------------


class _State:
    """Everything the fake remembers; every access holds ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.records: list[RecordedRequest] = []
        self.objects: dict[Provider, dict[str, JsonObject]] = {p: {} for p in PROVIDERS}
        self.failures: dict[Provider, list[_FailurePlan]] = {p: [] for p in PROVIDERS}
        self.delays: dict[Provider, list[_DelayPlan]] = {p: [] for p in PROVIDERS}
        self.outages: dict[Provider, _Outage] = {}
        #: Providers whose credentials were revoked: every request answers 401.
        self.revoked: set[Provider] = set()
        #: The Twilio account's ``status``: ``active``, ``suspended`` or ``closed``.
        self.twilio_account_status = "active"
        self.vapi_org_id = str(uuid.uuid4())
        self.idempotency: dict[Provider, dict[str, _StoredReply]] = {p: {} for p in PROVIDERS}
        self.twilio_opted_out: set[str] = set()
        self.twilio_credentials: dict[str, tuple[str, str]] = {}
        self.stripe_numbers = itertools.count(1)

    def clear(self) -> None:
        with self.lock:
            self.records.clear()
            for provider in PROVIDERS:
                self.objects[provider].clear()
                self.failures[provider].clear()
                self.delays[provider].clear()
                self.idempotency[provider].clear()
            self.outages.clear()
            self.revoked.clear()
            self.twilio_account_status = "active"
            self.twilio_opted_out.clear()
            self.twilio_credentials.clear()
            self.stripe_numbers = itertools.count(1)

    def take_failure(self, provider: Provider) -> _FailurePlan | None:
        plans = self.failures[provider]
        if not plans:
            return None
        plan = plans[0]
        plan.remaining -= 1
        if plan.remaining <= 0:
            plans.pop(0)
        return plan

    def take_outage(self, provider: Provider) -> _FailurePlan | None:
        outage = self.outages.get(provider)
        if outage is None:
            return None
        if time.monotonic() >= outage.until:
            del self.outages[provider]
            return None
        return _FailurePlan(outage.status, 1, outage.retry_after, None, None)

    def take_delay(self, provider: Provider) -> float:
        plans = self.delays[provider]
        if not plans:
            return 0.0
        plan = plans[0]
        plan.remaining -= 1
        if plan.remaining <= 0:
            plans.pop(0)
        return plan.seconds


async def _read_incoming(provider: Provider, request: Request) -> _Incoming:
    raw = await request.body()
    content_type = request.headers.get("content-type", "").lower()
    form: dict[str, str] | None = None
    pairs: list[tuple[str, str]] = []
    payload: Any | None = None
    json_error = False
    if "application/x-www-form-urlencoded" in content_type:
        pairs = parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
        form = dict(pairs)
    elif "json" in content_type and raw.strip():
        try:
            payload = json.loads(raw)
        except ValueError:
            json_error = True
    return _Incoming(
        provider=provider,
        method=request.method.upper(),
        path=request.url.path,
        path_params={key: str(value) for key, value in request.path_params.items()},
        headers={key.lower(): value for key, value in request.headers.items()},
        query=dict(request.query_params),
        form=form,
        form_pairs=pairs,
        json=payload,
        json_error=json_error,
        raw_query=request.url.query,
    )


# --- error shapes -------------------------------------------------------------------


def _twilio_error(
    status: int, code: int, message: str | None = None, headers: dict[str, str] | None = None
) -> _Reply:
    return _Reply(
        status,
        {
            "code": code,
            "message": message or TWILIO_ERROR_MESSAGES.get(code, _phrase(status)),
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        headers or {},
    )


_RESEND_ERROR_NAMES = {
    400: "validation_error",
    401: "missing_api_key",
    403: "invalid_api_key",
    404: "not_found",
    409: "invalid_idempotent_request",
    422: "validation_error",
    429: "rate_limit_exceeded",
}


def _resend_error(status: int, name: str | None = None, message: str | None = None) -> _Reply:
    default_name = _RESEND_ERROR_NAMES.get(status, "application_error")
    return _Reply(
        status,
        {
            "statusCode": status,
            "name": name or default_name,
            "message": message or _phrase(status),
        },
    )


def _vapi_error(status: int, message: str | None = None, code: int | str | None = None) -> _Reply:
    body: JsonObject = {
        "message": message or _phrase(status),
        "error": _phrase(status),
        "statusCode": status,
    }
    if code is not None:
        body["code"] = code
    return _Reply(status, body)


def _stripe_error(
    status: int,
    message: str | None = None,
    *,
    code: str | None = None,
    error_type: str | None = None,
    param: str | None = None,
) -> _Reply:
    if error_type is None:
        if status == 402:
            error_type = "card_error"
        elif status >= 500:
            error_type = "api_error"
        else:
            error_type = "invalid_request_error"
    if status == 429 and code is None:
        code = "rate_limit"
    error: JsonObject = {"type": error_type, "message": message or _phrase(status)}
    if code is not None:
        error["code"] = code
        error["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
    if param is not None:
        error["param"] = param
    return _Reply(status, {"error": error})


def _injected_reply(provider: Provider, plan: _FailurePlan) -> _Reply:
    status = plan.status
    if provider == "twilio":
        default_codes = {401: 20003, 404: 20404, 429: 20429, 500: 20500, 503: 20503}
        twilio_code = plan.error_code if isinstance(plan.error_code, int) else None
        twilio_code = twilio_code or default_codes.get(status, status)
        reply = _twilio_error(status, twilio_code, plan.message)
    elif provider == "resend":
        name = str(plan.error_code) if plan.error_code is not None else None
        reply = _resend_error(status, name, plan.message)
    elif provider == "vapi":
        reply = _vapi_error(status, plan.message, plan.error_code)
    else:
        code = str(plan.error_code) if plan.error_code is not None else None
        reply = _stripe_error(status, plan.message, code=code)
    if plan.retry_after is not None:
        reply.headers["Retry-After"] = str(plan.retry_after)
    return reply


def _auth_error(provider: Provider, incoming: _Incoming) -> _Reply | None:
    headers = incoming.headers
    if provider == "twilio":
        credentials = _basic_auth(headers)
        account_sid = incoming.path_params.get("account_sid", "")
        if credentials is None or not credentials[1]:
            return _twilio_error(401, 20003)
        username = credentials[0]
        if not username.startswith("SK") and account_sid and username != account_sid:
            return _twilio_error(401, 20003)
        return None
    token = _bearer_token(headers)
    if provider == "resend":
        if token is None:
            return _resend_error(
                401, "missing_api_key", "Missing API key in the authorization header"
            )
        if not token.startswith("re_"):
            return _resend_error(403, "invalid_api_key", "API key is invalid")
        return None
    if provider == "vapi":
        return None if token else _vapi_error(401, "Unauthorized")
    if token is None:
        return _stripe_error(
            401,
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth "
            "(e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
        )
    if not token.startswith(("sk_", "rk_")):
        return _stripe_error(401, f"Invalid API Key provided: {token[:8]}****")
    return None


def _revoked_reply(provider: Provider, incoming: _Incoming) -> _Reply:
    """What the provider answers a key that was revoked, deleted or rotated away."""
    if provider == "twilio":
        return _twilio_error(401, 20003)
    if provider == "resend":
        return _resend_error(403, "invalid_api_key", "API key is invalid")
    if provider == "vapi":
        return _vapi_error(401, "Unauthorized")
    token = _bearer_token(incoming.headers) or ""
    return _stripe_error(401, f"Invalid API Key provided: {token[:8]}****")


def _twilio_inactive(state: _State, incoming: _Incoming) -> _Reply | None:
    """A suspended or closed Twilio account may still read itself, and nothing else."""
    if state.twilio_account_status == "active" or incoming.path.endswith(
        f"/Accounts/{incoming.path_params.get('account_sid', '')}.json"
    ):
        return None
    return _twilio_error(401, 10001)


# --- Twilio --------------------------------------------------------------------------


class _Twilio:
    def __init__(self, state: _State) -> None:
        self.state = state

    def routes(self, wrap: Callable[[Provider, _Handler], Any]) -> list[Route]:
        return [
            Route(f"{_TWILIO_PREFIX}.json", wrap("twilio", self.fetch_account), methods=["GET"]),
            Route(
                f"{_TWILIO_PREFIX}/Messages.json",
                wrap("twilio", self.create_message),
                methods=["POST"],
            ),
            Route(
                f"{_TWILIO_PREFIX}/Messages.json",
                wrap("twilio", self.list_messages),
                methods=["GET"],
            ),
            Route(
                f"{_TWILIO_PREFIX}/Messages/{{message_sid}}.json",
                wrap("twilio", self.fetch_message),
                methods=["GET"],
            ),
        ]

    def create_message(self, incoming: _Incoming) -> _Reply:
        form = incoming.form or {}
        account_sid = incoming.path_params["account_sid"]
        to = form.get("To", "")
        sender = form.get("From") or None
        service_sid = form.get("MessagingServiceSid") or None
        if not to:
            return _twilio_error(400, 21604)
        bare_to = to.removeprefix("whatsapp:")
        if not _E164.match(bare_to):
            return _twilio_error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if sender is None and service_sid is None:
            return _twilio_error(400, 21603)
        content_sid = form.get("ContentSid") or None
        content_variables = form.get("ContentVariables") or None
        if not (form.get("Body") or form.get("MediaUrl") or content_sid):
            return _twilio_error(400, 21602)
        if content_variables is not None and content_sid is None:
            return _twilio_error(400, 21654)
        if content_sid is not None and not _CONTENT_SID.match(content_sid):
            return _twilio_error(400, 21655)
        if content_variables is not None and not _valid_content_variables(content_variables):
            return _twilio_error(400, 21656)
        if bare_to in self.state.twilio_opted_out:
            return _twilio_error(400, 21610)
        sid = "SM" + secrets.token_hex(16)
        now = _rfc2822(_now())
        uri = f"/{TWILIO_API_VERSION}/Accounts/{account_sid}/Messages/{sid}.json"
        message: JsonObject = {
            "account_sid": account_sid,
            "api_version": TWILIO_API_VERSION,
            "body": form.get("Body", ""),
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sender,
            "messaging_service_sid": service_sid,
            "num_media": "1" if form.get("MediaUrl") else "0",
            "num_segments": str(max(1, -(-len(form.get("Body", "")) // 160))),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            # Twilio answers "accepted" when a Messaging Service picks the sender.
            "status": "queued" if sender else "accepted",
            "subresource_uris": {"media": uri.removesuffix(".json") + "/Media.json"},
            "to": to,
            "uri": uri,
            "status_callback": form.get("StatusCallback"),
            # What a template send asked for (Twilio renders the body; the resource doesn't
            # show these, so they are kept for tests only).
            "content_sid": content_sid,
            "content_variables": content_variables,
        }
        self.state.objects["twilio"][sid] = message
        credentials = _basic_auth(incoming.headers)
        if credentials is not None:
            self.state.twilio_credentials[sid] = credentials
        return _Reply(201, _twilio_public(message))

    def fetch_account(self, incoming: _Incoming) -> _Reply:
        account_sid = incoming.path_params["account_sid"]
        stamp = _rfc2822(_now())
        uri = f"/{TWILIO_API_VERSION}/Accounts/{account_sid}.json"
        return _Reply(
            200,
            {
                "auth_token": "[the account's auth token]",
                "date_created": stamp,
                "date_updated": stamp,
                "friendly_name": "keepwarm fake account",
                "owner_account_sid": account_sid,
                "sid": account_sid,
                "status": self.state.twilio_account_status,
                "subresource_uris": {
                    "messages": uri.removesuffix(".json") + "/Messages.json",
                },
                "type": "Full",
                "uri": uri,
            },
        )

    def fetch_message(self, incoming: _Incoming) -> _Reply:
        message = self.state.objects["twilio"].get(incoming.path_params["message_sid"])
        if message is None or message["account_sid"] != incoming.path_params["account_sid"]:
            resource = incoming.path.removeprefix("/twilio")
            return _twilio_error(404, 20404, f"The requested resource {resource} was not found")
        return _Reply(200, _twilio_public(message))

    def list_messages(self, incoming: _Incoming) -> _Reply:
        account_sid = incoming.path_params["account_sid"]
        query = incoming.query
        page_size = int(query.get("PageSize", "50") or 50)
        found = [
            _twilio_public(message)
            for message in reversed(self.state.objects["twilio"].values())
            if message["account_sid"] == account_sid
            and ("To" not in query or message["to"] == query["To"])
            and ("From" not in query or message["from"] == query["From"])
        ][:page_size]
        uri = f"/{TWILIO_API_VERSION}/Accounts/{account_sid}/Messages.json?PageSize={page_size}"
        return _Reply(
            200,
            {
                "messages": found,
                "end": max(len(found) - 1, 0),
                "first_page_uri": uri + "&Page=0",
                "next_page_uri": None,
                "page": 0,
                "page_size": page_size,
                "previous_page_uri": None,
                "start": 0,
                "uri": uri + "&Page=0",
            },
        )


def _valid_content_variables(value: str) -> bool:
    """A JSON object of non-empty strings, as Twilio's Content API takes them (21656)."""
    try:
        variables = json.loads(value)
    except ValueError:
        return False
    return isinstance(variables, dict) and all(
        isinstance(item, str) and item and "\n" not in item for item in variables.values()
    )


#: Fields the fake keeps that Twilio's message resource doesn't return.
_TWILIO_PRIVATE = frozenset({"status_callback", "content_sid", "content_variables"})


def _twilio_public(message: JsonObject) -> JsonObject:
    return {key: value for key, value in message.items() if key not in _TWILIO_PRIVATE}


# --- Resend --------------------------------------------------------------------------


class _Resend:
    def __init__(self, state: _State) -> None:
        self.state = state

    def routes(self, wrap: Callable[[Provider, _Handler], Any]) -> list[Route]:
        return [
            Route("/resend/emails", wrap("resend", self.send), methods=["POST"]),
            Route("/resend/emails/batch", wrap("resend", self.send_batch), methods=["POST"]),
            Route("/resend/emails/{email_id}", wrap("resend", self.get), methods=["GET"]),
            Route("/resend/domains", wrap("resend", self.list_domains), methods=["GET"]),
        ]

    def _idempotent(self, incoming: _Incoming, create: Callable[[], _Reply]) -> _Reply:
        key = incoming.headers.get("idempotency-key")
        if key is None:
            return create()
        fingerprint = _fingerprint([incoming.path, incoming.json])
        stored = self.state.idempotency["resend"].get(key)
        if stored is not None:
            if stored.fingerprint != fingerprint:
                return _resend_error(
                    409,
                    "invalid_idempotent_request",
                    "Same idempotency key used with a different request payload. "
                    "Change your idempotency key or payload.",
                )
            return stored.reply
        reply = create()
        if reply.status < 400:
            self.state.idempotency["resend"][key] = _StoredReply(fingerprint, reply)
        return reply

    def _validate(self, params: Any) -> _Reply | None:
        if not isinstance(params, dict):
            return _resend_error(422, "validation_error", "Invalid request body.")
        for name in ("from", "to", "subject"):
            if not params.get(name):
                return _resend_error(422, "missing_required_field", f"Missing `{name}` field.")
        for name in ("from", "to", "cc", "bcc", "reply_to"):
            for address in _as_list(params.get(name)):
                if not isinstance(address, str) or not _EMAIL.match(_email_address(address)):
                    return _resend_error(
                        422,
                        "validation_error",
                        f"Invalid `{name}` field. The email address needs to follow the "
                        "`email@example.com` or `Name <email@example.com>` format.",
                    )
        return None

    def _store(self, params: JsonObject) -> str:
        email_id = str(uuid.uuid4())
        moment = _now()
        self.state.objects["resend"][email_id] = {
            "object": "email",
            "id": email_id,
            "to": _as_list(params.get("to")),
            "from": params.get("from"),
            "created_at": moment.strftime("%Y-%m-%d %H:%M:%S.%f+00"),
            "subject": params.get("subject"),
            "html": params.get("html"),
            "text": params.get("text"),
            "bcc": _as_list(params.get("bcc")) or None,
            "cc": _as_list(params.get("cc")) or None,
            "reply_to": _as_list(params.get("reply_to")) or None,
            "headers": params.get("headers"),
            "tags": params.get("tags"),
            "scheduled_at": params.get("scheduled_at"),
            "last_event": "scheduled" if params.get("scheduled_at") else "sent",
        }
        return email_id

    def send(self, incoming: _Incoming) -> _Reply:
        if incoming.json_error:
            return _resend_error(400, "validation_error", "Invalid JSON body.")

        params = incoming.json

        def create() -> _Reply:
            error = self._validate(params)
            if error is not None or not isinstance(params, dict):
                return error or _resend_error(422)
            return _Reply(200, {"id": self._store(params)})

        return self._idempotent(incoming, create)

    def send_batch(self, incoming: _Incoming) -> _Reply:
        if incoming.json_error or not isinstance(incoming.json, list):
            return _resend_error(422, "validation_error", "The batch must be a list of emails.")
        emails: list[Any] = incoming.json

        def create() -> _Reply:
            for params in emails:
                error = self._validate(params)
                if error is not None:
                    return error
            return _Reply(200, {"data": [{"id": self._store(params)} for params in emails]})

        return self._idempotent(incoming, create)

    def list_domains(self, incoming: _Incoming) -> _Reply:
        return _Reply(
            200,
            {
                "object": "list",
                "has_more": False,
                "data": [
                    {
                        "id": "d91cd9bd-1176-453e-8fc1-35364d380206",
                        "name": "keepwarm.test",
                        "status": "verified",
                        "created_at": "2026-01-05 10:00:00.000000+00",
                        "region": "us-east-1",
                        "capabilities": {"sending": "enabled", "receiving": "disabled"},
                    }
                ],
            },
        )

    def get(self, incoming: _Incoming) -> _Reply:
        stored = self.state.objects["resend"].get(incoming.path_params["email_id"])
        if stored is None:
            return _resend_error(404, "not_found", "Email not found")
        return _Reply(200, copy.deepcopy(stored))


# --- Vapi ----------------------------------------------------------------------------


class _Vapi:
    def __init__(self, state: _State) -> None:
        self.state = state

    def routes(self, wrap: Callable[[Provider, _Handler], Any]) -> list[Route]:
        return [
            Route("/vapi/call", wrap("vapi", self.create_call), methods=["POST"]),
            Route("/vapi/call", wrap("vapi", self.list_calls), methods=["GET"]),
            Route("/vapi/call/{call_id}", wrap("vapi", self.get_call), methods=["GET"]),
            Route("/vapi/phone-number", wrap("vapi", self.list_phone_numbers), methods=["GET"]),
        ]

    def create_call(self, incoming: _Incoming) -> _Reply:
        params = incoming.json
        if incoming.json_error or not isinstance(params, dict):
            return _vapi_error(400, "Invalid JSON body.")
        starters = ("assistantId", "assistant", "squadId", "squad", "workflowId", "workflow")
        if not any(params.get(key) for key in starters):
            return _vapi_error(
                400,
                "Couldn't Get Assistant. Need Either `assistant`, `assistantId`, `squad`, "
                "or `squadId`.",
            )
        phone_call = bool(params.get("phoneNumberId") or params.get("phoneNumber"))
        if phone_call and not (params.get("customer") or params.get("customerId")):
            return _vapi_error(
                400, "Couldn't Get Customer. Need Either `customer` Or `customerId`."
            )
        stamp = _iso_millis(_now())
        call: JsonObject = {key: value for key, value in params.items() if value is not None}
        call.update(
            {
                "id": str(uuid.uuid4()),
                "orgId": self.state.vapi_org_id,
                "type": "outboundPhoneCall" if phone_call else "webCall",
                "status": "queued",
                "createdAt": stamp,
                "updatedAt": stamp,
                "phoneCallProvider": "twilio" if phone_call else None,
                "phoneCallTransport": "pstn" if phone_call else None,
                "cost": 0,
                "monitor": {
                    "listenUrl": f"wss://phone-call-websocket.aws-us-west-2-backend-production2.vapi.ai/{uuid.uuid4()}/listen",
                    "controlUrl": f"https://phone-call-websocket.aws-us-west-2-backend-production2.vapi.ai/{uuid.uuid4()}/control",
                },
            }
        )
        call = {key: value for key, value in call.items() if value is not None}
        self.state.objects["vapi"][call["id"]] = call
        return _Reply(201, copy.deepcopy(call))

    def list_phone_numbers(self, incoming: _Incoming) -> _Reply:
        stamp = _iso_millis(_now())
        number: JsonObject = {
            "id": "6fa1b1b2-7c2e-4f3b-9a8e-2d1f0c3b4a5e",
            "orgId": self.state.vapi_org_id,
            "provider": "vapi",
            "number": "+14155550100",
            "status": "active",
            "createdAt": stamp,
            "updatedAt": stamp,
        }
        limit = int(float(incoming.query.get("limit", "100") or 100))
        return _Reply(200, [number][:limit])

    def get_call(self, incoming: _Incoming) -> _Reply:
        call = self.state.objects["vapi"].get(incoming.path_params["call_id"])
        if call is None:
            return _vapi_error(404, "Call not found")
        return _Reply(200, copy.deepcopy(call))

    def list_calls(self, incoming: _Incoming) -> _Reply:
        limit = int(incoming.query.get("limit", "100") or 100)
        calls = [
            copy.deepcopy(call)
            for call in reversed(self.state.objects["vapi"].values())
            if "assistantId" not in incoming.query
            or call.get("assistantId") == incoming.query["assistantId"]
        ]
        return _Reply(200, calls[:limit])


# --- Stripe --------------------------------------------------------------------------

#: Stripe resources the fake serves: path under ``/v1`` -> (id prefix, ``object`` value).
STRIPE_RESOURCES: dict[str, tuple[str, str]] = {
    "customers": ("cus_", "customer"),
    "payment_links": ("plink_", "payment_link"),
    "checkout/sessions": ("cs_test_", "checkout.session"),
    "invoices": ("in_", "invoice"),
    "invoiceitems": ("ii_", "invoiceitem"),
    "products": ("prod_", "product"),
    "prices": ("price_", "price"),
}
_STRIPE_REQUIRED: dict[str, tuple[str, ...]] = {
    "payment_links": ("line_items",),
    "invoices": ("customer",),
    "invoiceitems": ("customer",),
    "products": ("name",),
    "prices": ("currency",),
}
_STRIPE_WRITE_ONLY = frozenset({"expand", "line_items"})
_STRIPE_LIST_CONTROLS = frozenset({"limit", "starting_after", "ending_before", "expand"})
_INVOICE_ACTIONS = {
    "finalize": "open",
    "send": "open",
    "pay": "paid",
    "void": "void",
    "mark_uncollectible": "uncollectible",
}


def _stripe_defaults(kind: str, object_id: str, created: int) -> JsonObject:
    common: JsonObject = {"id": object_id, "livemode": False, "metadata": {}}
    if kind == "customer":
        return common | {
            "object": "customer",
            "address": None,
            "balance": 0,
            "created": created,
            "currency": None,
            "default_source": None,
            "delinquent": False,
            "description": None,
            "email": None,
            "invoice_prefix": _random_id(8).upper(),
            "name": None,
            "phone": None,
            "preferred_locales": [],
            "tax_exempt": "none",
            "test_clock": None,
        }
    if kind == "payment_link":
        return common | {
            "object": "payment_link",
            "active": True,
            "allow_promotion_codes": False,
            "currency": "usd",
            "url": f"https://buy.stripe.com/test_{_random_id(24)}",
        }
    if kind == "checkout.session":
        return common | {
            "object": "checkout.session",
            "amount_subtotal": None,
            "amount_total": None,
            "client_reference_id": None,
            "created": created,
            "currency": "usd",
            "customer": None,
            "customer_email": None,
            "expires_at": created + 24 * 3600,
            "mode": "payment",
            "payment_intent": None,
            "payment_status": "unpaid",
            "status": "open",
            "success_url": None,
            "cancel_url": None,
            "url": f"https://checkout.stripe.com/c/pay/{object_id}",
        }
    if kind == "invoice":
        return common | {
            "object": "invoice",
            "amount_due": 0,
            "amount_paid": 0,
            "amount_remaining": 0,
            "auto_advance": False,
            "collection_method": "charge_automatically",
            "created": created,
            "currency": "usd",
            "customer": None,
            "days_until_due": None,
            "description": None,
            "due_date": None,
            "hosted_invoice_url": None,
            "invoice_pdf": None,
            "number": None,
            "status": "draft",
        }
    if kind == "invoiceitem":
        return common | {
            "object": "invoiceitem",
            "amount": 0,
            "currency": "usd",
            "customer": None,
            "date": created,
            "description": None,
            "invoice": None,
            "quantity": 1,
        }
    if kind == "product":
        return common | {"object": "product", "active": True, "created": created, "name": None}
    return common | {
        "object": kind,
        "active": True,
        "created": created,
        "currency": None,
        "type": "one_time",
        "unit_amount": None,
    }


class _Stripe:
    def __init__(self, state: _State) -> None:
        self.state = state

    def routes(self, wrap: Callable[[Provider, _Handler], Any]) -> list[Route]:
        return [
            Route("/v1/balance", wrap("stripe", self.balance), methods=["GET"]),
            Route(
                "/v1/checkout/sessions", wrap("stripe", self.collection), methods=["GET", "POST"]
            ),
            Route(
                "/v1/checkout/sessions/{object_id}",
                wrap("stripe", self.item),
                methods=["GET", "POST"],
            ),
            Route(
                "/v1/invoices/{object_id}/{action}",
                wrap("stripe", self.invoice_action),
                methods=["POST"],
            ),
            Route("/v1/{resource}", wrap("stripe", self.collection), methods=["GET", "POST"]),
            Route("/v1/{resource}/{object_id}", wrap("stripe", self.item), methods=["GET", "POST"]),
        ]

    @staticmethod
    def balance(incoming: _Incoming) -> _Reply:
        token = _bearer_token(incoming.headers) or ""
        funds = [{"amount": 0, "currency": "usd", "source_types": {"card": 0}}]
        return _Reply(
            200,
            {
                "object": "balance",
                "available": funds,
                "pending": copy.deepcopy(funds),
                "livemode": "_live_" in token,
            },
        )

    @staticmethod
    def _resource(incoming: _Incoming) -> str:
        return incoming.path_params.get("resource", "checkout/sessions")

    @staticmethod
    def _unknown(incoming: _Incoming) -> _Reply:
        return _stripe_error(
            404,
            f"Unrecognized request URL ({incoming.method}: {incoming.path}). Please see "
            "https://stripe.com/docs or we can help at https://support.stripe.com/.",
        )

    def _params(self, incoming: _Incoming) -> JsonObject:
        if incoming.method == "GET":
            return stripe_params(parse_qsl(incoming.raw_query, keep_blank_values=True))
        return stripe_params(incoming.form_pairs)

    def _missing(self, resource: str, object_id: str) -> _Reply:
        kind = STRIPE_RESOURCES[resource][1].replace(".", "_")
        return _stripe_error(
            404,
            f"No such {kind}: '{object_id}'",
            code="resource_missing",
            param="id",
        )

    def _idempotent(self, incoming: _Incoming, create: Callable[[], _Reply]) -> _Reply:
        key = incoming.headers.get("idempotency-key")
        if incoming.method != "POST" or key is None:
            return create()
        fingerprint = _fingerprint([incoming.path, sorted(incoming.form_pairs)])
        stored = self.state.idempotency["stripe"].get(key)
        if stored is not None:
            if stored.fingerprint != fingerprint:
                return _stripe_error(
                    400,
                    "Keys for idempotent requests can only be used with the same parameters "
                    f"they were first used with. Try using a key other than '{key}' if you "
                    "meant to execute a different request.",
                    error_type="idempotency_error",
                )
            replay = stored.reply
            return _Reply(
                replay.status, replay.body, replay.headers | {"Idempotent-Replayed": "true"}
            )
        reply = create()
        headers = reply.headers | {"Idempotency-Key": key}
        reply = _Reply(reply.status, reply.body, headers)
        if reply.status < 500:
            self.state.idempotency["stripe"][key] = _StoredReply(fingerprint, reply)
        return reply

    def collection(self, incoming: _Incoming) -> _Reply:
        resource = self._resource(incoming)
        if resource not in STRIPE_RESOURCES:
            return self._unknown(incoming)
        if incoming.method == "GET":
            return self._list(resource, incoming)
        return self._idempotent(incoming, lambda: self._create(resource, incoming))

    def _create(self, resource: str, incoming: _Incoming) -> _Reply:
        params = self._params(incoming)
        for name in _STRIPE_REQUIRED.get(resource, ()):
            if name not in params or params[name] in ("", [], {}):
                return _stripe_error(
                    400,
                    f"Missing required param: {name}.",
                    code="parameter_missing",
                    param=name,
                )
        prefix, kind = STRIPE_RESOURCES[resource]
        object_id = prefix + _random_id(58 if kind == "checkout.session" else 14)
        stored = _stripe_defaults(kind, object_id, int(time.time()))
        stored.update(
            {key: value for key, value in params.items() if key not in _STRIPE_WRITE_ONLY}
        )
        self.state.objects["stripe"][object_id] = stored
        return _Reply(200, copy.deepcopy(stored))

    def _list(self, resource: str, incoming: _Incoming) -> _Reply:
        kind = STRIPE_RESOURCES[resource][1]
        filters = {
            key: value
            for key, value in self._params(incoming).items()
            if key not in _STRIPE_LIST_CONTROLS
        }
        limit = int(incoming.query.get("limit", "10") or 10)
        found = [
            copy.deepcopy(item)
            for item in reversed(self.state.objects["stripe"].values())
            if item["object"] == kind
            and all(item.get(key) == value for key, value in filters.items())
        ]
        return _Reply(
            200,
            {
                "object": "list",
                "data": found[:limit],
                "has_more": len(found) > limit,
                "url": f"/v1/{resource}",
            },
        )

    def item(self, incoming: _Incoming) -> _Reply:
        resource = self._resource(incoming)
        if resource not in STRIPE_RESOURCES:
            return self._unknown(incoming)
        object_id = incoming.path_params["object_id"]
        stored = self.state.objects["stripe"].get(object_id)
        if stored is None or stored["object"] != STRIPE_RESOURCES[resource][1]:
            return self._missing(resource, object_id)
        if incoming.method == "GET":
            return _Reply(200, copy.deepcopy(stored))

        def update() -> _Reply:
            params = self._params(incoming)
            metadata = params.pop("metadata", None)
            stored.update({k: v for k, v in params.items() if k not in _STRIPE_WRITE_ONLY})
            if isinstance(metadata, dict):
                merged = dict(stored.get("metadata") or {}) | metadata
                stored["metadata"] = {k: v for k, v in merged.items() if v != ""}
            return _Reply(200, copy.deepcopy(stored))

        return self._idempotent(incoming, update)

    def invoice_action(self, incoming: _Incoming) -> _Reply:
        action = incoming.path_params["action"]
        if action not in _INVOICE_ACTIONS:
            return self._unknown(incoming)
        object_id = incoming.path_params["object_id"]
        invoice = self.state.objects["stripe"].get(object_id)
        if invoice is None or invoice["object"] != "invoice":
            return self._missing("invoices", object_id)

        def act() -> _Reply:
            if invoice["number"] is None and action != "void":
                number = next(self.state.stripe_numbers)
                invoice["number"] = f"{_random_id(8).upper()}-{number:04d}"
                invoice["hosted_invoice_url"] = (
                    f"https://invoice.stripe.com/i/acct_test/test_{_random_id(40)}"
                )
                invoice["invoice_pdf"] = invoice["hosted_invoice_url"] + "/pdf"
            invoice["status"] = _INVOICE_ACTIONS[action]
            if action == "pay":
                invoice["amount_paid"] = invoice["amount_due"]
                invoice["amount_remaining"] = 0
            return _Reply(200, copy.deepcopy(invoice))

        return self._idempotent(incoming, act)


# --------------------------------------------------------------------------------------
# The app and the server
# --------------------------------------------------------------------------------------


def _unknown_route(provider: Provider) -> _Handler:
    def handler(incoming: _Incoming) -> _Reply:
        message = f"The fake {provider} API does not serve {incoming.method} {incoming.path}"
        if provider == "twilio":
            return _twilio_error(404, 20404, message)
        if provider == "resend":
            return _resend_error(404, "not_found", message)
        if provider == "vapi":
            return _vapi_error(404, message)
        return _stripe_error(404, message)

    return handler


class FakeProviderApp:
    """The ASGI app of the fake plus its state; :class:`FakeProviders` serves it.

    Attributes:
        state: Everything recorded and stored, guarded by ``state.lock``.
        app: The Starlette application.
    """

    def __init__(self) -> None:
        self.state = _State()
        routes: list[Route] = []
        for group in (_Twilio(self.state), _Resend(self.state), _Vapi(self.state)):
            routes.extend(group.routes(self._wrap))
        routes.extend(_Stripe(self.state).routes(self._wrap))
        prefixed: tuple[Provider, ...] = ("twilio", "resend", "vapi")
        for provider in prefixed:
            routes.append(
                Route(
                    f"/{provider}/{{rest:path}}",
                    self._wrap(provider, _unknown_route(provider)),
                    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                )
            )
        routes.append(
            Route(
                "/{rest:path}",
                self._wrap("stripe", _unknown_route("stripe")),
                methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            )
        )
        self.app = Starlette(routes=routes)

    def _wrap(
        self, provider: Provider, handler: _Handler
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await self._serve(provider, handler, request)

        return endpoint

    async def _serve(self, provider: Provider, handler: _Handler, request: Request) -> Response:
        arrived = _now()
        incoming = await _read_incoming(provider, request)
        state = self.state
        with state.lock:
            delay = state.take_delay(provider)
            # An outage answers every request and leaves fail_next plans for afterwards.
            plan = state.take_outage(provider) or state.take_failure(provider)
            revoked = plan is None and provider in state.revoked
            if plan is not None:
                reply = _injected_reply(provider, plan)
            elif revoked:
                reply = _revoked_reply(provider, incoming)
            else:
                reply = (
                    _auth_error(provider, incoming)
                    or (_twilio_inactive(state, incoming) if provider == "twilio" else None)
                    or handler(incoming)
                )
            state.records.append(
                RecordedRequest(
                    provider=provider,
                    method=incoming.method,
                    path=incoming.path,
                    headers=dict(incoming.headers),
                    query=dict(incoming.query),
                    form=dict(incoming.form) if incoming.form is not None else None,
                    json=copy.deepcopy(incoming.json),
                    at=arrived,
                    status=reply.status,
                    failed=reply.status >= 400,
                    injected=plan is not None or revoked,
                )
            )
        if delay > 0:
            # The work is already done: a slow provider still acts on a request whose
            # client gave up waiting, which is what timeouts must be tested against.
            await asyncio.sleep(delay)
        request_id_header = {
            "twilio": "Twilio-Request-Id",
            "stripe": "Request-Id",
            "resend": "X-Request-Id",
            "vapi": "X-Request-Id",
        }[provider]
        headers = {request_id_header: "req_" + _random_id(14)} | reply.headers
        return JSONResponse(reply.body, status_code=reply.status, headers=headers)


_VAPI_TRANSCRIPT = (
    "AI: Hi, it's Keepwarm calling about the quote you asked for.\n"
    "User: Oh hi. Could you call me back next week?\n"
    "AI: Of course. Talk to you then. Bye!\n"
)


def _vapi_transcript_messages(transcript: str, started: datetime) -> list[JsonObject]:
    start_ms = int(started.timestamp() * 1000)
    messages: list[JsonObject] = []
    for index, line in enumerate(filter(None, transcript.splitlines())):
        speaker, _, text = line.partition(": ")
        role = "user" if speaker.strip().lower() == "user" else "bot"
        messages.append(
            {
                "role": role,
                "message": text if text else line,
                "time": start_ms + index * 3000,
                "endTime": start_ms + index * 3000 + 2500,
                "secondsFromStart": index * 3.0,
                "duration": 2500,
            }
        )
    return messages


def _resend_created_at(stored: Any, fallback: datetime) -> str:
    if isinstance(stored, str):
        try:
            parsed = datetime.strptime(stored, "%Y-%m-%d %H:%M:%S.%f+00")
        except ValueError:
            return stored
        return parsed.replace(tzinfo=UTC).isoformat()
    return fallback.isoformat()


def _resend_event_details(event_type: str, moment: datetime) -> JsonObject:
    if event_type == "email.bounced":
        return {
            "bounce": {
                "message": "The recipient's email address is on the suppression list because "
                "it has a recent history of producing hard bounces.",
                "subType": "Suppressed",
                "type": "Permanent",
            }
        }
    if event_type == "email.clicked":
        return {
            "click": {
                "ipAddress": "192.0.2.10",
                "link": "https://keepwarm.test/",
                "timestamp": _iso_millis(moment),
                "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)",
            }
        }
    if event_type == "email.failed":
        return {"failed": {"reason": "reached_daily_quota"}}
    if event_type == "email.suppressed":
        return {
            "suppressed": {
                "message": "The recipient is on your account's suppression list.",
                "type": "OnAccountSuppressionList",
            }
        }
    return {}


class FakeProviders:
    """Serve the fake provider APIs from a background thread.

    Use it as a context manager or call :meth:`start` and :meth:`stop`::

        with FakeProviders() as fake:
            client.api.base_url = fake.twilio_base_url
            ...
            assert fake.requests("twilio")[0].form["Body"] == "hi"

    All methods are thread-safe: the server thread and the test share one lock.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Prepare the fake without starting it.

        Args:
            host: The interface to listen on.
            port: The port to listen on; 0 picks a free one.
        """
        self._host = host
        self._requested_port = port
        self._port: int | None = None
        self._fake = FakeProviderApp()
        self._state = self._fake.state
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def app(self) -> Starlette:
        """The ASGI app, for in-process use without the server thread."""
        return self._fake.app

    def start(self, timeout: float = 10.0) -> Self:
        """Start serving on the configured host and port.

        Args:
            timeout: Seconds to wait for the server to accept connections.

        Returns:
            This instance, for chaining.

        Raises:
            RuntimeError: If the server is already running or fails to start.
        """
        if self._thread is not None:
            raise RuntimeError("FakeProviders is already running")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._requested_port))
        self._port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self._fake.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="fake-providers", daemon=True
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                sock.close()
                raise RuntimeError("the fake provider server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and wait for the server thread to end."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout=5)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- URLs --------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The server root, e.g. ``http://127.0.0.1:54321``."""
        if self._port is None:
            raise RuntimeError("FakeProviders is not started")
        return f"http://{self._host}:{self._port}"

    @property
    def twilio_base_url(self) -> str:
        """Assign to ``twilio.rest.Client(...).api.base_url``."""
        return f"{self.base_url}/twilio"

    @property
    def resend_base_url(self) -> str:
        """Assign to ``resend.api_url`` (the SDK appends ``/emails``)."""
        return f"{self.base_url}/resend"

    @property
    def vapi_base_url(self) -> str:
        """Pass as ``vapi.Vapi(token=..., base_url=...)``."""
        return f"{self.base_url}/vapi"

    @property
    def stripe_base_url(self) -> str:
        """Pass as ``stripe.StripeClient(key, base_addresses={"api": ...})``."""
        return self.base_url

    # --- observation -------------------------------------------------------------------

    def requests(self, provider: Provider | None = None) -> list[RecordedRequest]:
        """Return the recorded requests in arrival order.

        Args:
            provider: Only this provider's requests; None for all.

        Returns:
            A snapshot list; later requests do not change it.
        """
        with self._state.lock:
            return [r for r in self._state.records if provider is None or r.provider == provider]

    def objects(self, provider: Provider) -> list[JsonObject]:
        """Return copies of what the provider has created, oldest first.

        Twilio messages, Resend emails, Vapi calls and Stripe objects of every kind.

        Args:
            provider: The provider whose objects to list.

        Returns:
            Deep copies of the stored objects.
        """
        with self._state.lock:
            return copy.deepcopy(list(self._state.objects[provider].values()))

    def get_object(self, provider: Provider, object_id: str) -> JsonObject | None:
        """Return a copy of one stored object, or None if there is none with that id.

        Args:
            provider: The provider that created it.
            object_id: Its id (Twilio sid, Resend/Vapi id, Stripe id).
        """
        with self._state.lock:
            stored = self._state.objects[provider].get(object_id)
            return copy.deepcopy(stored) if stored is not None else None

    def update_object(self, provider: Provider, object_id: str, **fields: Any) -> JsonObject:
        """Change a stored object, as the provider would over time (e.g. a call ending).

        Args:
            provider: The provider that created it.
            object_id: Its id.
            **fields: Fields to set, named as in the provider's JSON.

        Returns:
            A copy of the updated object.

        Raises:
            KeyError: If there is no such object.
        """
        with self._state.lock:
            stored = self._state.objects[provider][object_id]
            stored.update(copy.deepcopy(fields))
            return copy.deepcopy(stored)

    # --- control -----------------------------------------------------------------------

    def reset(self) -> None:
        """Forget recorded requests, stored objects, idempotency keys, plans and outages."""
        self._state.clear()

    def fail_next(
        self,
        provider: Provider,
        status: int = 503,
        count: int = 1,
        retry_after: int | str | None = None,
        error_code: int | str | None = None,
        message: str | None = None,
    ) -> None:
        """Make the provider's next requests fail, before anything is created.

        Plans queue up: a second call applies after the first is used up. The error body
        has the provider's shape: Twilio ``{code, message, more_info, status}``, Resend
        ``{statusCode, name, message}``, Vapi ``{message, error, statusCode}``, Stripe
        ``{"error": {type, code, message}}``.

        Args:
            provider: Which provider fails.
            status: The HTTP status to answer with.
            count: How many requests fail.
            retry_after: A ``Retry-After`` header value (seconds or an HTTP date).
            error_code: The provider error code: a Twilio int such as 21211 or 21610,
                a Resend error name such as ``"validation_error"``, a Stripe code such as
                ``"card_declined"``, or a Vapi ``code``. Defaults suit ``status``.
            message: The error message; a default suits the code.
        """
        if count < 1:
            raise ValueError("count must be at least 1")
        plan = _FailurePlan(status, count, retry_after, error_code, message)
        with self._state.lock:
            self._state.failures[provider].append(plan)

    def delay_next(self, provider: Provider, seconds: float, count: int = 1) -> None:
        """Make the provider's next responses arrive late.

        The request is processed at once (a message is still created), and only the
        response waits, so a client that times out leaves an outcome it cannot see.

        Args:
            provider: Which provider is slow.
            seconds: How long each response waits.
            count: How many requests are slow.
        """
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._state.lock:
            self._state.delays[provider].append(_DelayPlan(seconds, count))

    def outage(
        self,
        provider: Provider,
        seconds: float,
        status: int = 503,
        retry_after: int | str | None = None,
    ) -> None:
        """Make every request to the provider fail until ``seconds`` have passed.

        Each request in the window gets ``status`` with the provider's error body (as
        :meth:`fail_next` describes), creates nothing, and is recorded as injected.
        :meth:`fail_next` plans wait until the outage is over. A new outage replaces
        the provider's current one.

        Args:
            provider: Which provider is down.
            seconds: How long, in wall-clock seconds from now.
            status: The HTTP status to answer with.
            retry_after: A ``Retry-After`` header value (seconds or an HTTP date).
        """
        if seconds <= 0:
            raise ValueError("seconds must be positive")
        until = time.monotonic() + seconds
        with self._state.lock:
            self._state.outages[provider] = _Outage(until, status, retry_after)

    def end_outage(self, provider: Provider) -> None:
        """End the provider's outage now, if it has one.

        Args:
            provider: Which provider is back.
        """
        with self._state.lock:
            self._state.outages.pop(provider, None)

    def revoke_credentials(self, provider: Provider) -> None:
        """Make the provider refuse keepwarm's credentials until :meth:`restore_credentials`.

        Every request is answered as the provider answers a revoked key: Twilio 401 (code
        20003), Resend 403 ``invalid_api_key``, Stripe 401 (an authentication error), Vapi
        401. :meth:`fail_next` plans and outages still come first.

        Args:
            provider: Whose key was revoked.
        """
        with self._state.lock:
            self._state.revoked.add(provider)

    def restore_credentials(self, provider: Provider) -> None:
        """Accept the provider's credentials again (the key was fixed).

        Args:
            provider: Whose key works again.
        """
        with self._state.lock:
            self._state.revoked.discard(provider)

    def twilio_account_status(self, status: Literal["active", "suspended", "closed"]) -> None:
        """Set the Twilio account's ``status``, as Twilio suspends an account (no funds, a
        policy review) or closes it.

        While it is not ``active``, the account fetch still answers (with that ``status``) and
        every other request is refused with 401, error 10001 "Account is not active".

        Args:
            status: ``active``, ``suspended`` or ``closed``.
        """
        with self._state.lock:
            self._state.twilio_account_status = status

    def twilio_opt_out(self, number: str) -> None:
        """Make every later SMS to ``number`` fail with Twilio error 21610 (replied STOP).

        Args:
            number: The E.164 number that unsubscribed.
        """
        with self._state.lock:
            self._state.twilio_opted_out.add(number.removeprefix("whatsapp:"))

    def twilio_status_callback(
        self,
        message_sid: str,
        status: str,
        *,
        error_code: int | None = None,
        url: str | None = None,
        auth_token: str | None = None,
    ) -> Webhook:
        """Move a Twilio message to ``status`` and build its signed status callback.

        The fake does not deliver the callback: the test posts it to the app under test
        (over HTTP or ASGI), e.g. ``client.post(hook.url, data=hook.form, headers=hook.headers)``.

        Args:
            message_sid: The message's sid.
            status: The new status (``sent``, ``delivered``, ``undelivered``, ``failed``...).
            error_code: The Twilio error code for failed deliveries (e.g. 30007).
            url: Where to deliver it; defaults to the message's ``StatusCallback``.
            auth_token: The token that signs it; defaults to the password of the basic auth
                the message was created with (correct unless an API key was used).

        Returns:
            The callback to deliver.

        Raises:
            KeyError: If there is no such message.
            ValueError: If there is no URL or no auth token to sign with.
        """
        with self._state.lock:
            message = self._state.objects["twilio"][message_sid]
            credentials = self._state.twilio_credentials.get(message_sid)
            now = _rfc2822(_now())
            message["status"] = status
            message["date_updated"] = now
            if status in {"sent", "delivered"} and message["date_sent"] is None:
                message["date_sent"] = now
            if error_code is not None:
                message["error_code"] = error_code
                message["error_message"] = TWILIO_ERROR_MESSAGES.get(error_code)
            target = url or message.get("status_callback")
            token = auth_token or (credentials[1] if credentials else None)
            form = {
                "AccountSid": message["account_sid"],
                "ApiVersion": TWILIO_API_VERSION,
                "From": message["from"] or "",
                "MessageSid": message_sid,
                "MessageStatus": status,
                "SmsSid": message_sid,
                "SmsStatus": status,
                "To": message["to"],
            }
            if message["messaging_service_sid"]:
                form["MessagingServiceSid"] = message["messaging_service_sid"]
            if error_code is not None:
                form["ErrorCode"] = str(error_code)
        if not target:
            raise ValueError(f"message {message_sid} has no StatusCallback; pass url=")
        if not token:
            raise ValueError("no auth token to sign the callback with; pass auth_token=")
        return _form_webhook(target, form, token)

    # --- webhooks ----------------------------------------------------------------------
    # The fake never delivers these: the test posts ``hook.body`` with ``hook.headers``
    # to the app under test (over HTTP or ASGI).

    def twilio_inbound_message(
        self,
        url: str,
        *,
        from_: str,
        to: str,
        body: str,
        auth_token: str,
        whatsapp: bool = False,
        opt_out_type: TwilioOptOutType | None = None,
        message_sid: str | None = None,
        account_sid: str | None = None,
    ) -> Webhook:
        """Build the signed webhook Twilio posts when someone texts one of your numbers.

        The form has the fields of a real inbound SMS or WhatsApp webhook: ``MessageSid``,
        ``SmsSid`` and ``SmsMessageSid`` (one ``SM`` sid), ``AccountSid``, ``From``, ``To``,
        ``Body``, ``NumMedia`` ``"0"``, ``NumSegments`` ``"1"``, ``SmsStatus``
        ``"received"`` and ``ApiVersion``. WhatsApp prefixes ``From`` and ``To`` with
        ``whatsapp:`` and adds ``WaId`` and ``MessageType``. ``OptOutType`` is sent when
        given (Twilio Advanced Opt-Out); ``STOP`` also makes later sends to ``from_`` fail
        with 21610, like :meth:`twilio_opt_out`, and ``START`` undoes that.

        Args:
            url: The app's inbound-message URL, exactly as the app sees it (it is signed).
            from_: The sender's E.164 number (a ``whatsapp:`` prefix is ignored).
            to: Your Twilio number, E.164.
            body: The message text.
            auth_token: The Twilio auth token that signs it.
            whatsapp: Whether the message came over WhatsApp.
            opt_out_type: ``STOP``, ``START`` or ``HELP`` when Twilio matched a keyword.
            message_sid: The ``SM...`` sid; a random one by default.
            account_sid: The ``AC...`` sid; defaults to the account of the latest message
                sent through the fake, else ``AC`` + 32 zeros.

        Returns:
            The form-encoded webhook to deliver.
        """
        sid = message_sid or "SM" + secrets.token_hex(16)
        sender = from_.removeprefix("whatsapp:")
        prefix = "whatsapp:" if whatsapp else ""
        with self._state.lock:
            if account_sid is None:
                messages = list(self._state.objects["twilio"].values())
                account_sid = str(messages[-1]["account_sid"]) if messages else "AC" + "0" * 32
            if opt_out_type == "STOP":
                self._state.twilio_opted_out.add(sender)
            elif opt_out_type == "START":
                self._state.twilio_opted_out.discard(sender)
        form = {
            "SmsMessageSid": sid,
            "NumMedia": "0",
            "SmsSid": sid,
            "SmsStatus": "received",
            "Body": body,
            "To": prefix + to.removeprefix("whatsapp:"),
            "NumSegments": "1",
            "MessageSid": sid,
            "AccountSid": account_sid,
            "From": prefix + sender,
            "ApiVersion": TWILIO_API_VERSION,
        }
        if whatsapp:
            form["WaId"] = sender.removeprefix("+")
            form["MessageType"] = "text"
        if opt_out_type is not None:
            form["OptOutType"] = opt_out_type
        return _form_webhook(url, form, auth_token)

    def twilio_voice_status(
        self,
        url: str,
        *,
        from_: str,
        to: str,
        status: str,
        auth_token: str,
        direction: str = "inbound",
        dial_status: str | None = None,
        duration: int = 0,
        call_sid: str | None = None,
        account_sid: str | None = None,
    ) -> Webhook:
        """Build the signed status callback Twilio posts when a call to one of your numbers
        ends (or the ``<Dial>`` action callback, with ``dial_status``).

        The form has the fields of a real voice status callback: ``CallSid`` (``CA`` sid),
        ``AccountSid``, ``From``/``Caller``, ``To``/``Called``, ``CallStatus``,
        ``Direction``, ``ApiVersion``, ``Timestamp``, ``CallbackSource``
        (``call-progress-events``) and ``SequenceNumber``, plus ``CallDuration`` and
        ``Duration`` for a ``completed`` call. With ``dial_status`` it is a ``<Dial>``
        action callback instead: ``DialCallStatus``, ``DialCallSid`` and
        ``DialCallDuration`` for the forwarded leg.

        Args:
            url: The app's voice status callback URL, exactly as the app sees it (signed).
            from_: The caller's number, E.164 (or ``anonymous``).
            to: Your Twilio number, E.164.
            status: ``CallStatus``: ``completed``, ``no-answer``, ``busy``, ``failed``,
                ``canceled`` (or ``ringing``, ``in-progress`` for progress events).
            auth_token: The Twilio auth token that signs it.
            direction: ``inbound``, ``outbound-api`` or ``outbound-dial``.
            dial_status: The forwarded leg's ``DialCallStatus``, for a ``<Dial>`` action.
            duration: Seconds the call lasted (``completed`` calls and answered dials).
            call_sid: The ``CA...`` sid; a random one by default. Twilio sends one callback
                per status of a call, all with its sid.
            account_sid: The ``AC...`` sid; ``AC`` + 32 zeros by default.

        Returns:
            The form-encoded webhook to deliver.
        """
        sid = call_sid or "CA" + secrets.token_hex(16)
        form = {
            "AccountSid": account_sid or "AC" + "0" * 32,
            "ApiVersion": TWILIO_API_VERSION,
            "CallSid": sid,
            "CallStatus": status,
            "Called": to,
            "Caller": from_,
            "Direction": direction,
            "From": from_,
            "To": to,
        }
        if dial_status is None:
            form["Timestamp"] = _rfc2822(_now())
            form["CallbackSource"] = "call-progress-events"
            form["SequenceNumber"] = "0"
            if status == "completed":
                form["CallDuration"] = str(duration)
                form["Duration"] = str(max(1, (duration + 59) // 60))
        else:
            form["DialCallStatus"] = dial_status
            form["DialCallSid"] = "CA" + secrets.token_hex(16)
            form["DialCallDuration"] = str(duration if dial_status == "completed" else 0)
        return _form_webhook(url, form, auth_token)

    def resend_event(
        self,
        url: str,
        *,
        type: str,
        email_id: str,
        secret: str,
        to: Sequence[str] | None = None,
        tags: Mapping[str, str] | None = None,
        timestamp: int | None = None,
        svix_id: str | None = None,
        from_: str | None = None,
        subject: str | None = None,
        extra_data: Mapping[str, Any] | None = None,
    ) -> Webhook:
        """Build a Resend webhook event, signed the Svix way.

        The body is ``{"type", "created_at", "data": {"created_at", "email_id", "from",
        "to", "subject", "tags"}}`` with ``tags`` as a ``{name: value}`` object (absent
        when there are none). ``email.bounced``, ``email.clicked``, ``email.failed`` and
        ``email.suppressed`` carry ``bounce``, ``click``, ``failed`` or ``suppressed``
        details. If ``email_id`` is an email sent through the fake, its sender,
        recipients, subject and tags are the defaults, and its ``last_event`` becomes the
        event (``delivered``, ``bounced``...). Headers: ``svix-id``, ``svix-timestamp``
        and ``svix-signature`` (see :func:`svix_signature`).

        Args:
            url: The app's Resend webhook URL.
            type: The event type, e.g. ``email.delivered``, ``email.bounced``,
                ``email.complained``, ``email.opened``, ``email.clicked``.
            email_id: The Resend email id.
            secret: The endpoint's signing secret, ``whsec_<base64>``
                (see :func:`new_resend_webhook_secret`).
            to: The recipients; default the stored email's, else ``["a@b.test"]``.
            tags: The email's tags as ``{name: value}``; default the stored email's.
            timestamp: The ``svix-timestamp`` (unix seconds) and event time; default now.
                Pass an old one to test replay protection.
            svix_id: The ``svix-id``; a fresh ``msg_...`` by default. Resend retries
                resend the same id, so reuse one to test deduplication.
            from_: The sender; default the stored email's.
            subject: The subject; default the stored email's.
            extra_data: More ``data`` fields, overriding the generated ones.

        Returns:
            The JSON webhook to deliver.
        """
        moment = _now() if timestamp is None else datetime.fromtimestamp(timestamp, UTC)
        stamp = int(moment.timestamp()) if timestamp is None else timestamp
        with self._state.lock:
            found = self._state.objects["resend"].get(email_id)
            if found is not None and type.startswith("email."):
                found["last_event"] = type.removeprefix("email.")
            stored: JsonObject = copy.deepcopy(found) if found is not None else {}
        stored_tags = {
            str(tag["name"]): str(tag["value"])
            for tag in stored.get("tags") or []
            if isinstance(tag, dict) and "name" in tag
        }
        data: JsonObject = {
            "created_at": _resend_created_at(stored.get("created_at"), moment),
            "email_id": email_id,
            "from": from_ or stored.get("from") or "Keepwarm <hello@keepwarm.test>",
            "to": _as_list(to) if to is not None else stored.get("to") or ["a@b.test"],
            "subject": subject or stored.get("subject") or "Hello",
        }
        event_tags = dict(tags) if tags is not None else stored_tags
        if event_tags:
            data["tags"] = event_tags
        data.update(_resend_event_details(type, moment))
        data.update(copy.deepcopy(dict(extra_data or {})))
        body = _json_body({"type": type, "created_at": _iso_millis(moment), "data": data})
        message_id = svix_id or "msg_" + _random_id(27)
        headers = {
            "Content-Type": "application/json",
            "svix-id": message_id,
            "svix-timestamp": str(stamp),
            "svix-signature": svix_signature(secret, message_id, stamp, body),
        }
        return Webhook(url, None, headers, body)

    def vapi_end_of_call_report(
        self,
        url: str,
        *,
        call_id: str,
        secret: str,
        metadata: Mapping[str, Any] | None = None,
        ended_reason: str = "customer-ended-call",
        summary: str = "The customer asked to be called back next week.",
        duration_seconds: float = 42.0,
        cost: float = 0.12,
        transcript: str | None = None,
        customer: Mapping[str, Any] | None = None,
        mode: VapiSigning = "secret",
        timestamp: int | None = None,
        call_type: str | None = None,
        phone_number_id: str | None = None,
    ) -> Webhook:
        """Build the ``end-of-call-report`` server message Vapi posts after a call.

        The body is ``{"message": {"type": "end-of-call-report", "timestamp" (ms),
        "endedReason", "call", "customer", "artifact": {"transcript", "messages",
        "recordingUrl"}, "analysis": {"summary"}, "startedAt", "endedAt", "cost",
        "durationMs", "durationSeconds", "durationMinutes", "summary", "transcript",
        "recordingUrl", "messages"}}``. If ``call_id`` is a call created through the fake,
        ``call`` is that call (with its ``metadata`` and ``customer``), and the stored call
        becomes ``ended`` with the same reason, times, cost, analysis and artifact.

        Signing: ``mode="secret"`` sends ``x-vapi-secret: <secret>``; ``mode="hmac"``
        sends ``x-timestamp`` (unix seconds) and ``x-signature`` (see
        :func:`vapi_signature`), an HMAC credential's defaults.

        Args:
            url: The app's Vapi server URL.
            call_id: The Vapi call id.
            secret: The server secret or HMAC key.
            metadata: ``call.metadata``; default the stored call's (top-level, else
                ``assistantOverrides.metadata``), else ``{}``.
            ended_reason: Why the call ended, e.g. ``customer-ended-call``,
                ``customer-did-not-answer``, ``voicemail``, ``customer-busy``.
            summary: The call summary (``analysis.summary`` and ``summary``).
            duration_seconds: How long the call lasted.
            cost: The cost in USD.
            transcript: ``AI: ...`` / ``User: ...`` lines; a short call by default.
            customer: ``call.customer``; default the stored call's.
            mode: ``"secret"`` or ``"hmac"``.
            timestamp: Unix seconds the message is stamped and signed with (``endedAt``,
                ``message.timestamp``, ``x-timestamp``); default now.
            call_type: ``call.type``, e.g. ``inboundPhoneCall`` for a call to your Vapi
                number (the caller in ``customer={"number": ...}``); default the stored
                call's, else ``outboundPhoneCall``.
            phone_number_id: ``call.phoneNumberId``, the Vapi number of the call.

        Returns:
            The JSON webhook to deliver.
        """
        now = time.time() if timestamp is None else float(timestamp)
        ended = datetime.fromtimestamp(now, UTC)
        started = ended - timedelta(seconds=duration_seconds)
        text = _VAPI_TRANSCRIPT if transcript is None else transcript
        recording = f"https://storage.vapi.ai/{call_id}-{int(now * 1000)}-{uuid.uuid4()}-mono.wav"
        artifact: JsonObject = {
            "messages": _vapi_transcript_messages(text, started),
            "transcript": text,
            "recordingUrl": recording,
        }
        analysis: JsonObject = {"summary": summary}
        changes: JsonObject = {
            "status": "ended",
            "endedReason": ended_reason,
            "startedAt": _iso_millis(started),
            "endedAt": _iso_millis(ended),
            "updatedAt": _iso_millis(ended),
            "cost": cost,
            "analysis": analysis,
            "artifact": artifact,
        }
        if call_type is not None:
            changes["type"] = call_type
        if phone_number_id is not None:
            changes["phoneNumberId"] = phone_number_id
        call = self._vapi_call(call_id, metadata, customer, changes)
        message: JsonObject = {
            "timestamp": int(now * 1000),
            "type": "end-of-call-report",
            "endedReason": ended_reason,
            "call": call,
        }
        if "customer" in call:
            message["customer"] = copy.deepcopy(call["customer"])
        message.update(
            {
                "artifact": copy.deepcopy(artifact),
                "analysis": dict(analysis),
                "startedAt": _iso_millis(started),
                "endedAt": _iso_millis(ended),
                "cost": cost,
                "durationMs": round(duration_seconds * 1000),
                "durationSeconds": duration_seconds,
                "durationMinutes": round(duration_seconds / 60, 4),
                "summary": summary,
                "transcript": text,
                "recordingUrl": recording,
                "messages": copy.deepcopy(artifact["messages"]),
            }
        )
        body = _json_body({"message": message})
        return Webhook(url, None, _vapi_headers(body, secret, mode, int(now)), body)

    def vapi_status_update(
        self,
        url: str,
        *,
        call_id: str,
        secret: str,
        status: str = "in-progress",
        ended_reason: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        customer: Mapping[str, Any] | None = None,
        mode: VapiSigning = "secret",
        timestamp: int | None = None,
    ) -> Webhook:
        """Build the ``status-update`` server message Vapi posts as a call progresses.

        The body is ``{"message": {"type": "status-update", "timestamp" (ms), "status",
        "endedReason" (when ended or given), "call", "customer"}}``; the stored call, if
        the fake created it, takes the new status (``startedAt`` when ``in-progress``,
        ``endedAt`` and ``endedReason`` when ``ended``). Signed as in
        :meth:`vapi_end_of_call_report`.

        Args:
            url: The app's Vapi server URL.
            call_id: The Vapi call id.
            secret: The server secret or HMAC key.
            status: ``scheduled``, ``queued``, ``ringing``, ``in-progress``,
                ``forwarding`` or ``ended``.
            ended_reason: Why the call ended; ``customer-ended-call`` if ``ended``.
            metadata: ``call.metadata``; default the stored call's, else ``{}``.
            customer: ``call.customer``; default the stored call's.
            mode: ``"secret"`` or ``"hmac"``.
            timestamp: Unix seconds the message is stamped and signed with; default now.

        Returns:
            The JSON webhook to deliver.
        """
        now = time.time() if timestamp is None else float(timestamp)
        stamp = _iso_millis(datetime.fromtimestamp(now, UTC))
        changes: JsonObject = {"status": status, "updatedAt": stamp}
        if status == "in-progress":
            changes["startedAt"] = stamp
        if status == "ended":
            changes["endedAt"] = stamp
            ended_reason = ended_reason or "customer-ended-call"
        if ended_reason is not None:
            changes["endedReason"] = ended_reason
        call = self._vapi_call(call_id, metadata, customer, changes)
        message: JsonObject = {"timestamp": int(now * 1000), "type": "status-update"}
        message["status"] = status
        if ended_reason is not None:
            message["endedReason"] = ended_reason
        message["call"] = call
        if "customer" in call:
            message["customer"] = copy.deepcopy(call["customer"])
        body = _json_body({"message": message})
        return Webhook(url, None, _vapi_headers(body, secret, mode, int(now)), body)

    def _vapi_call(
        self,
        call_id: str,
        metadata: Mapping[str, Any] | None,
        customer: Mapping[str, Any] | None,
        changes: JsonObject,
    ) -> JsonObject:
        """Apply ``changes`` to the stored call (if any) and return the call to echo."""
        with self._state.lock:
            stored = self._state.objects["vapi"].get(call_id)
            if stored is not None:
                stored.update(copy.deepcopy(changes))
                call = copy.deepcopy(stored)
            else:
                created = changes.get("startedAt") or changes["updatedAt"]
                call = {
                    "id": call_id,
                    "orgId": self._state.vapi_org_id,
                    "type": "outboundPhoneCall",
                    "createdAt": created,
                    "phoneCallProvider": "twilio",
                    "phoneCallTransport": "pstn",
                } | copy.deepcopy(changes)
        if metadata is not None:
            call["metadata"] = copy.deepcopy(dict(metadata))
        elif "metadata" not in call:
            overrides = call.get("assistantOverrides") or {}
            call["metadata"] = copy.deepcopy(dict(overrides.get("metadata") or {}))
        if customer is not None:
            call["customer"] = copy.deepcopy(dict(customer))
        return call

    def stripe_event(
        self,
        url: str,
        *,
        type: str,
        data_object: Mapping[str, Any],
        secret: str,
        event_id: str | None = None,
        timestamp: int | None = None,
        previous_attributes: Mapping[str, Any] | None = None,
    ) -> Webhook:
        """Build a Stripe webhook Event, signed with ``Stripe-Signature``.

        The body is an Event as Stripe sends it (pretty-printed): ``id`` (``evt_...``),
        ``object: "event"``, ``api_version`` (the SDK's), ``created``, ``data: {"object"}``,
        ``livemode: false``, ``pending_webhooks: 1``, ``request: {"id": null,
        "idempotency_key": null}`` and ``type``. The header comes from the SDK's
        ``stripe.WebhookSignature.generate_signature_header``, so
        ``stripe.Webhook.construct_event(hook.body, header, secret)`` accepts it.

        Args:
            url: The app's Stripe webhook URL.
            type: The event type, e.g. ``checkout.session.completed``, ``invoice.paid``.
            data_object: ``data.object``, e.g. a stored object from :meth:`get_object`.
            secret: The endpoint's signing secret, ``whsec_...``.
            event_id: The event id; a fresh ``evt_...`` by default. Stripe retries resend
                the same id, so reuse one to test deduplication.
            timestamp: ``created`` and the signature's ``t`` (unix seconds); default now.
            previous_attributes: ``data.previous_attributes`` for ``*.updated`` events.

        Returns:
            The JSON webhook to deliver.
        """
        created = int(time.time()) if timestamp is None else timestamp
        data: JsonObject = {"object": copy.deepcopy(dict(data_object))}
        if previous_attributes is not None:
            data["previous_attributes"] = copy.deepcopy(dict(previous_attributes))
        event: JsonObject = {
            "id": event_id or "evt_" + _random_id(24),
            "object": "event",
            "api_version": stripe.api_version,
            "created": created,
            "data": data,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": type,
        }
        body = _json_body(event, indent=2)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "Stripe-Signature": stripe_signature_header(body, secret, created),
        }
        return Webhook(url, None, headers, body)

    def describe(self) -> Iterator[str]:
        """Yield human-readable lines saying how to point each SDK at this fake."""
        yield f"fake providers listening on {self.base_url}"
        yield f"  twilio: client.api.base_url = {self.twilio_base_url!r}"
        yield f"  resend: resend.api_url = {self.resend_base_url!r}"
        yield f"  vapi:   Vapi(token=..., base_url={self.vapi_base_url!r})"
        yield f"  stripe: StripeClient(key, base_addresses={{'api': {self.stripe_base_url!r}}})"
        yield "for keepwarm (any credentials will do):"
        yield "  export KEEPWARM_PROVIDER_MODE=live"
        yield f"  export KEEPWARM_TWILIO_BASE_URL={self.twilio_base_url}"
        yield f"  export KEEPWARM_RESEND_BASE_URL={self.resend_base_url}"
        yield f"  export KEEPWARM_VAPI_BASE_URL={self.vapi_base_url}"
        yield f"  export KEEPWARM_STRIPE_BASE_URL={self.stripe_base_url}"


def main(argv: list[str] | None = None) -> None:
    """Run the fake standalone until interrupted.

    Args:
        argv: Command-line arguments (defaults to ``sys.argv``).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=8900, help="port to listen on (0: any)")
    args = parser.parse_args(argv)
    fake = FakeProviders(args.host, args.port).start()
    try:
        for line in fake.describe():
            print(line, flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


__all__ = [
    "PROVIDERS",
    "STRIPE_RESOURCES",
    "TWILIO_ERROR_MESSAGES",
    "FakeProviderApp",
    "FakeProviders",
    "Provider",
    "RecordedRequest",
    "TwilioOptOutType",
    "VapiSigning",
    "Webhook",
    "new_resend_webhook_secret",
    "stripe_params",
    "stripe_signature_header",
    "svix_signature",
    "twilio_signature_headers",
    "vapi_signature",
]


if __name__ == "__main__":
    main()
