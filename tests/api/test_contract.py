"""The OpenAPI document is the contract: schemathesis runs every check over the running API.

The app runs under uvicorn on PostgreSQL and the session's Temporal dev server and worker;
schemathesis loads the app's own OpenAPI document and runs its examples, coverage, fuzzing and
stateful phases with every check on, deterministically. Zero failures is the pass mark.

Provider webhooks are signed here as the provider would sign them (``SignWebhooks``): a
signature header the generated request carries is replaced by a valid one, one it leaves out
stays out (and must get a 401).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import available_timezones

import httpx
import phonenumbers
import pytest
import schemathesis
from hypothesis import strategies as st
from pydantic import SecretStr
from schemathesis.core.failures import Failure
from schemathesis.engine import events, from_schema
from schemathesis.openapi.checks import RejectedPositiveData
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from uvicorn import Config, Server

from api.main import create_app
from models.settings import Settings
from tests.conftest import ADMIN_TOKEN, create_org, dev_address, make_settings
from tests.fakes.providers import (
    new_resend_webhook_secret,
    stripe_signature_header,
    svix_signature,
    twilio_signature_headers,
    vapi_signature,
)

PUBLIC_URL = "https://contract.keepwarm.test"
TWILIO_TOKEN = "contract-twilio-token"
RESEND_SECRET = new_resend_webhook_secret()
STRIPE_SECRET = "whsec_contract"
VAPI_SECRET = "contract-vapi-secret"
#: Examples per operation and phase: enough to reach every branch the schema describes,
#: few enough for a run of well under a minute on two cores.
MAX_EXAMPLES = 10
#: Every check schemathesis has for an API without DELETE (use_after_free and
#: ensure_resource_availability run but find nothing to delete).
EVERY_CHECK = {
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "positive_data_acceptance",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "use_after_free",
    "ensure_resource_availability",
    "ignored_auth",
    "object_level_authorization",
}
WEBHOOK_PATH = re.compile(r"^/v1/webhooks/(twilio|resend|stripe|vapi)/[^/]+$")
#: Rules the OpenAPI document states in prose or as a format of its own, as no JSON Schema
#: validator can check them: they relate two fields, depend on what the org holds, or need a
#: phone number's numbering plan. A request that keeps the schema but breaks one is a 422 by
#: design, not a contract failure.
PROSE_RULES = (
    "is not a valid phone number",  # format: phone (a dialable number)
    "must be after from",  # `to` after `from`
    "cursor is not valid",  # a cursor the API handed out
    "no such operator in this org",  # operator_id names one of the org's operators
    "is required with an org API key",  # operator_id: a session acts as itself, a key names one
    "thresholds must fall",  # scoring: high_value > engaged > window_shopper
    "window end must be after its start",  # quiet hours
    "must be a positive duration",  # an ISO 8601 duration over zero
    "durations may not exceed",  # 999,999,999 days (stated for seconds; ISO strings can't be)
    "numeric value in the duration is too large",  # likewise
    "must be between PT1M and P1D",  # the takeover timeout (likewise)
    "this deployment runs dry_run",  # provider_mode live needs a live deployment
    "must be in the future and after starts_at",  # a silence's `until`
    "must be an https URL",  # alerts.heartbeat_url
    "must be after starts_at",  # a booking's ends_at
    "is in the past",  # a booking's starts_at (against the server's clock)
    "give starts_at, ends_at or provider_id",  # a booking's PATCH changes something
    "is in the future",  # a visit event's `at` (against the server's clock)
    "is needed for a call message",  # a Vapi end-of-call report names its call
    "name each variant once",  # an experiment's variants
    "give one weight per variant",  # likewise
    "variants and fallbacks are messages",  # no voice among them
    "list each fallback channel once",  # and not the step's own
    "list each request once",  # scoring.requests, whatever the case and spacing
)


#: Example numbers (their formats' own examples) for ``format: phone``: any of them is
#: dialable whatever the org's region.
def _example(region: str) -> phonenumbers.PhoneNumber:
    number = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    assert number is not None
    return number


PHONES = [
    phonenumbers.format_number(_example(region), style)
    for region in ("GB", "US", "DE", "AU", "IE", "FR")
    for style in (
        phonenumbers.PhoneNumberFormat.E164,
        phonenumbers.PhoneNumberFormat.INTERNATIONAL,
    )
]
schemathesis.openapi.format("phone", st.sampled_from(PHONES))
# ``format: email`` as the document describes it: an address at a domain that can receive mail
# (special-use ones such as .test or .invalid are refused, as their description says).
schemathesis.openapi.format(
    "email",
    st.builds(
        "{}@{}.{}".format,
        st.from_regex(r"[a-z][a-z0-9._+-]{0,30}[a-z0-9]", fullmatch=True).filter(
            lambda local: ".." not in local
        ),
        st.from_regex(r"[a-z][a-z0-9-]{0,20}[a-z0-9]", fullmatch=True),
        st.sampled_from(["com", "org", "co.uk", "io"]),
    ),
)
schemathesis.openapi.format(
    "mailbox",
    st.builds(
        lambda name, local, domain: (
            f"{name} <{local}@{domain}.test>" if name else f"{local}@{domain}.test"
        ),
        st.sampled_from(["", "Shine", "Shine Cleaning"]),
        st.from_regex(r"[a-z][a-z0-9.]{0,20}[a-z]", fullmatch=True).filter(
            lambda local: ".." not in local
        ),
        st.from_regex(r"[a-z]{1,20}", fullmatch=True),
    ),
)


class SignWebhooks:
    """Sign provider webhooks the way each provider does, in front of the app.

    Only headers the request carries are replaced (and timestamps made current), so a
    request without a signature header still gets the 401 the contract promises.
    """

    def __init__(self, app: ASGIApp) -> None:
        """Wrap ``app``."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Buffer a webhook's body, sign it, and replay it to the app."""
        match = WEBHOOK_PATH.match(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = scope.get("query_string", b"").decode("latin-1")
        url = f"{PUBLIC_URL}{scope['path']}{'?' + query if query else ''}"
        signed = _sign(match.group(1), url, body, headers)
        scope = {**scope, "headers": [(k.encode(), v.encode("latin-1")) for k, v in signed.items()]}
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _sign(provider: str, url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
    now = str(int(time.time()))
    signed = dict(headers)
    # An empty header is a generated request's missing signature: it stays missing.
    present = {name for name, value in headers.items() if value}
    if provider == "twilio" and "x-twilio-signature" in present:
        try:
            params = dict(
                parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=bool(body))
            )
        except (UnicodeDecodeError, ValueError):
            params = {}
        signature = twilio_signature_headers(url, params, TWILIO_TOKEN)["X-Twilio-Signature"]
        signed["x-twilio-signature"] = signature
    elif provider == "resend" and "svix-signature" in present:
        if "svix-timestamp" in present:
            signed["svix-timestamp"] = now
        stamp = signed.get("svix-timestamp", "")
        signed["svix-signature"] = svix_signature(
            RESEND_SECRET, headers.get("svix-id", ""), stamp, body
        )
    elif provider == "stripe" and "stripe-signature" in present:
        # Stripe signs UTF-8 only: a body that isn't keeps the generated header, and fails.
        with contextlib.suppress(UnicodeDecodeError):
            signed["stripe-signature"] = stripe_signature_header(body, STRIPE_SECRET)
    elif provider == "vapi":
        if "x-vapi-secret" in present:
            signed["x-vapi-secret"] = VAPI_SECRET
        if {"x-signature", "x-timestamp"} <= present:
            signed["x-timestamp"] = now
            signed["x-signature"] = vapi_signature(VAPI_SECRET, now, body)
    return signed


@dataclass(frozen=True)
class Served:
    """The app under test: its base URL, its OpenAPI document and a fresh org."""

    base_url: str
    openapi: dict[str, Any]
    org_id: str
    api_key: str


@pytest.fixture(scope="module")
def contract_settings(pg_url: str, dev_server: WorkflowEnvironment) -> Settings:
    """The session's stack with provider webhook secrets, and no rate limit (a 429 would
    depend on how fast the machine is)."""
    return make_settings(
        database_url=pg_url,
        temporal_address=dev_address(dev_server),
        public_url=PUBLIC_URL,
        rate_limit_per_minute=0,
        twilio_auth_token=SecretStr(TWILIO_TOKEN),
        resend_webhook_secret=SecretStr(RESEND_SECRET),
        stripe_webhook_secret=SecretStr(STRIPE_SECRET),
        vapi_webhook_secret=SecretStr(VAPI_SECRET),
    )


@pytest.fixture(scope="module")
def contract_server(contract_settings: Settings) -> Iterator[str]:
    """The API under uvicorn in a thread of its own; its base URL."""
    app = create_app(contract_settings)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    server = Server(Config(SignWebhooks(app), log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="contract-api", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the API did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture(scope="module")
async def served(contract_server: str, stack_worker: Worker) -> AsyncIterator[Served]:
    """The running API (a worker behind it) and a fresh org to test it as."""
    async with httpx.AsyncClient(base_url=contract_server) as client:
        org_id, headers = await create_org(client, name="Contract Cleaning")
        openapi = (await client.get("/openapi.json")).json()
    yield Served(
        base_url=contract_server,
        openapi=openapi,
        org_id=org_id,
        api_key=headers["Authorization"].removeprefix("Bearer "),
    )


#: The document lists every IANA zone (~600) as the timezone's enum. The coverage phase sends
#: each value of an enum, which on the three operations that take a timezone is ~2,000
#: requests, most of them starting a Lead workflow; these zones (whole-hour, half-hour and
#: odd offsets, and the ones the test's org uses) exercise the same code.
ZONES = [
    "UTC",
    "Europe/London",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Etc/GMT-14",
]
ALL_ZONES = sorted(available_timezones())


def _fewer_zones(node: Any) -> Any:
    """The document with the timezone enum cut to ``ZONES``."""
    if isinstance(node, dict):
        if node.get("enum") == ALL_ZONES:
            return {**node, "enum": ZONES}
        return {key: _fewer_zones(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_fewer_zones(item) for item in node]
    return node


def _config(served: Served) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "base-url": served.base_url,
            "workers": 1,
            # No state carried between runs (learned validation, replayed failures).
            "cache": {"enabled": False},
            "headers": {"Authorization": f"Bearer {served.api_key}"},
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True},
            "checks": {"enabled": True},
            "phases": {"stateful": {"max-steps": 12}},
            "request-timeout": 30,
            "operations": [
                # Creating an org takes the admin token; every other route an org's key.
                {
                    "include-name": "POST /v1/orgs",
                    "headers": {"Authorization": f"Bearer {ADMIN_TOKEN}"},
                },
                # Webhooks for the test's org, so a signed event goes all the way in.
                {
                    "include-path-regex": "^/v1/webhooks/",
                    "parameters": {"org_id": served.org_id},
                },
            ],
        }
    )


def filter_failure(
    context: schemathesis.HookContext,
    failure: Failure,
    case: schemathesis.Case[Any],
    response: schemathesis.Response,
) -> bool:
    """Keep every failure but a schema-valid request refused for a prose-only rule."""
    if not isinstance(failure, RejectedPositiveData) or response.status_code != 422:
        return True
    details = response.json()["error"]["details"]
    return not details or not all(
        any(rule in detail["message"] for rule in PROSE_RULES) for detail in details
    )


@dataclass
class Outcome:
    """What a schemathesis run found and what it sent."""

    failures: list[str] = field(default_factory=list)
    #: Statuses answered, per operation.
    statuses: defaultdict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    #: The checks that ran.
    checks: set[str] = field(default_factory=set)


def _run(served: Served) -> Outcome:
    """Run every phase with every check over the running API."""
    document = _fewer_zones(served.openapi)
    assert document != served.openapi, "the timezone enum is no longer in the document"
    schema = schemathesis.openapi.from_dict(document, config=_config(served))
    schema.hook(filter_failure)
    outcome = Outcome()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            _record(outcome, event)
        elif isinstance(event, events.NonFatalError | events.FatalError):
            outcome.failures.append(f"schemathesis error: {event!r}")
    return outcome


def _record(outcome: Outcome, event: events.ScenarioFinished) -> None:
    recorder = event.recorder
    for case_id, node in recorder.cases.items():
        response = recorder.find_response(case_id=case_id)
        if response is not None:
            outcome.statuses[node.value.operation.label].add(response.status_code)
    for case_id, checks in recorder.checks.items():
        for check in checks:
            outcome.checks.add(check.name)
            if check.failure_info is None:
                continue
            failure = check.failure_info.failure
            response = recorder.find_response(case_id=case_id)
            answer = f"{response.status_code}: {response.text[:400]}" if response else "none"
            steps = "\n".join(step.curl for step in check.failure_info.steps)
            outcome.failures.append(
                f"[{event.phase.value}] {recorder.label}: {failure.title} ({check.name})\n"
                f"{failure.message}\n-> {answer}\n{steps or check.failure_info.code_sample}"
            )


async def test_the_api_keeps_its_openapi_contract(served: Served) -> None:
    outcome = await asyncio.to_thread(_run, served)

    failures = sorted(set(outcome.failures))
    assert not failures, f"{len(failures)} contract failures:\n\n" + "\n\n".join(failures)
    # Every check ran, every operation was reached with valid credentials, and each
    # provider's signed webhooks got through.
    assert outcome.checks >= EVERY_CHECK
    refused = {401, 403, 405}
    assert [op for op, statuses in outcome.statuses.items() if statuses <= refused] == []
    webhooks = {op: s for op, s in outcome.statuses.items() if op.startswith("POST /v1/webhooks/")}
    assert len(webhooks) == 4
    assert all(200 in statuses for statuses in webhooks.values()), webhooks
