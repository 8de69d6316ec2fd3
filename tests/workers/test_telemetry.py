"""Observability for the ops engineer: spans exported over OTLP as one trace from a webhook to
the provider call it causes, and each worker's Temporal SDK metrics for Prometheus.

The collector is a stand-in: a small HTTP server that takes OTLP/HTTP protobuf on
``/v1/traces``, as a real OpenTelemetry Collector does on port 4318, and decodes it.

OpenTelemetry keeps one tracer provider per process. The trace test runs the API and a worker
in this process, so it takes keepwarm's provider (``tracer_provider``, installed once) and adds
its own exporting processor, closed at the end; it never replaces the global provider.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment

from models.tables import Message
from tests.channels.conftest import SMS_FROM, TWILIO_TOKEN, Live, live_settings, webhook_url
from tests.conftest import ISOLATED_NAMESPACE, dev_address, eventually, serve
from tests.fakes.providers import FakeProviders
from tests.workers.processes import (
    drain,
    free_port,
    keepwarm_env,
    read_until,
    spawn,
    stopped_at_exit,
)
from workers.client import connect, register_search_attributes
from workers.registry import build_adapters
from workers.telemetry import otlp_exporter, tracer_provider
from workers.worker import ACTIVITY_THREADS, build_worker


@dataclass(frozen=True)
class ExportedSpan:
    """One span as the collector received it."""

    service: str
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    kind: int
    attributes: dict[str, Any]


@dataclass
class Collector:
    """An OTLP/HTTP collector stand-in on a free local port."""

    url: str
    spans: list[ExportedSpan] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    @property
    def traces_url(self) -> str:
        """Where the OTLP/HTTP trace exporter posts (``<endpoint>/v1/traces``)."""
        return f"{self.url}/v1/traces"


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


def _decode(body: bytes) -> list[ExportedSpan]:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    decoded = []
    for resource_spans in request.resource_spans:
        service = _attributes(resource_spans.resource.attributes).get("service.name", "")
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                decoded.append(
                    ExportedSpan(
                        service=service,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_id=span.parent_span_id.hex(),
                        name=span.name,
                        kind=span.kind,
                        attributes=_attributes(span.attributes),
                    )
                )
    return decoded


@pytest.fixture
def collector() -> Iterator[Collector]:
    """The collector stand-in, running for the test."""
    received = Collector(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # the exporter's one request kind
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.paths.append(self.path)
            if self.path != "/v1/traces":
                self.send_error(404)
                return
            received.spans.extend(_decode(body))
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: pytest shows failures, not every export

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    received.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield received
    server.shutdown()
    server.server_close()


class _ExportDuringTest(BatchSpanProcessor):
    """Exports while the test runs; once closed it takes no more spans, silently (a shut-down
    BatchSpanProcessor logs every span it refuses, and this one stays on the process's
    provider for the rest of the session)."""

    closed = False

    def on_end(self, span: ReadableSpan) -> None:
        if not self.closed:
            super().on_end(span)

    def close(self) -> None:
        self.closed = True
        self.shutdown()  # type: ignore[no-untyped-call]  # untyped in opentelemetry-sdk


def test_without_an_endpoint_nothing_is_exported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)

    assert otlp_exporter() is None


def test_the_standard_endpoint_variable_sends_spans_to_the_collector(
    collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
    exporter = otlp_exporter()
    assert exporter is not None
    # A provider of the test's own: the exporter is what is under test, not the global.
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    with provider.get_tracer("tests").start_as_current_span("checked"):
        pass
    provider.shutdown()

    assert collector.paths == ["/v1/traces"]
    assert [span.name for span in collector.spans] == ["checked"]


def _text_back_id(engine: Engine, org_id: str, call_sid: str) -> str:
    """The text-back workflow's id for the call (the call's inbound message names it)."""
    with Session(engine) as session:
        message = session.exec(
            select(Message).where(Message.org_id == org_id, Message.provider_message_id == call_sid)
        ).one()
    return f"text-back-{org_id}-{message.id}"


async def test_a_webhook_is_one_trace_to_the_provider_call_it_causes(
    pg_url: str,
    pg_engine: Engine,
    dev_server: WorkflowEnvironment,
    fake_providers: FakeProviders,
    collector: Collector,
) -> None:
    # Live adapters on the fake providers, on a namespace no other worker polls.
    settings = live_settings(pg_url, dev_address(dev_server), fake_providers).model_copy(
        update={"temporal_namespace": ISOLATED_NAMESPACE}
    )
    # Only a flush sends before the hour is out: the API's lifespan end must do it.
    export = _ExportDuringTest(
        OTLPSpanExporter(endpoint=collector.traces_url), schedule_delay_millis=3_600_000
    )
    tracer_provider(service="tests").add_span_processor(export)
    try:
        client = await connect(settings)
        await register_search_attributes(client)
        with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
            worker = build_worker(
                client, engine=pg_engine, adapters=build_adapters(settings), executor=executor
            )
            async with worker, serve(settings) as api:
                live = Live(api=api, client=client, fake=fake_providers, settings=settings)
                org_id, _ = await live.org()
                caller = "+447911200199"
                hook = fake_providers.twilio_voice_status(
                    webhook_url("twilio", org_id),
                    from_=caller,
                    to=SMS_FROM,
                    status="no-answer",
                    auth_token=TWILIO_TOKEN,
                )
                assert hook.form is not None

                answer = await live.deliver(hook)

                assert answer.status_code == 200, answer.text
                text_back = _text_back_id(pg_engine, org_id, hook.form["CallSid"])
                await asyncio.wait_for(client.get_workflow_handle(text_back).result(), 30)
            # The API's lifespan has ended: what it flushed is all the collector has.
            exported = list(collector.spans)
    finally:
        export.close()

    [sms] = [r for r in fake_providers.requests("twilio") if r.method == "POST"]
    assert sms.form is not None and sms.form["To"] == caller
    twilio = fake_providers.twilio_base_url
    [provider_call] = [s for s in exported if str(s.attributes.get("http.url")).startswith(twilio)]
    assert provider_call.kind == ProtoSpan.SPAN_KIND_CLIENT
    trace = [s for s in exported if s.trace_id == provider_call.trace_id]
    names = {s.span_id: s.name for s in trace}
    parent_of = {s.name: names.get(s.parent_id) for s in trace}
    # Temporal's spans hang off the start: the run, each activity's schedule, the completion.
    assert (
        parent_of.items()
        >= {
            "POST /v1/webhooks/twilio/{org_id}": None,
            "StartWorkflow:Confirmation": "POST /v1/webhooks/twilio/{org_id}",
            "RunWorkflow:Confirmation": "StartWorkflow:Confirmation",
            "StartActivity:send_confirmation": "StartWorkflow:Confirmation",
            "RunActivity:send_confirmation": "StartActivity:send_confirmation",
            "POST": "RunActivity:send_confirmation",
        }.items()
    ), parent_of
    [root] = [s for s in trace if not s.parent_id]
    assert root.kind == ProtoSpan.SPAN_KIND_SERVER
    assert root.attributes["http.route"] == "/v1/webhooks/twilio/{org_id}"
    assert provider_call.attributes["http.status_code"] == 201
    # Twilio is told the trace too (W3C traceparent: version-traceid-spanid-flags).
    assert sms.headers["traceparent"].split("-")[1:3] == [
        provider_call.trace_id,
        provider_call.span_id,
    ]


async def test_a_worker_serves_temporal_metrics_for_prometheus(
    dev_server: WorkflowEnvironment, sqlite_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = keepwarm_env(
        temporal_address=dev_address(dev_server),
        temporal_namespace=ISOLATED_NAMESPACE,
        database_url=sqlite_url,
        data_dir=str(tmp_path / "data"),
        metrics_port=str(port),
        worker_activity_threads="3",
    )

    worker = await spawn("worker", env=env)
    async with stopped_at_exit(worker):
        await read_until(worker, "worker running on", within=60)
        drain(worker)

        async def temporal_metrics() -> list[str]:
            async with httpx.AsyncClient(timeout=5) as http:
                answer = await http.get(f"http://127.0.0.1:{port}/metrics")
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith("text/plain")
            samples = [line for line in answer.text.splitlines() if not line.startswith("#")]
            names = {line.split("{")[0].split(" ")[0] for line in samples}
            return samples if {"temporal_request", "temporal_worker_start"} <= names else []

        samples = await eventually(temporal_metrics, within=30, every=0.5)
        # KEEPWARM_WORKER_ACTIVITY_THREADS bounds the activities the worker takes at once.
        activity_slots = [
            line.rsplit(" ", 1)[1]
            for line in samples
            if line.startswith("temporal_worker_task_slots_available{")
            and 'worker_type="ActivityWorker"' in line
        ]
        assert activity_slots == ["3"]


async def test_the_api_process_sends_its_spans_when_it_stops(
    collector: Collector, sqlite_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = keepwarm_env(database_url=sqlite_url, data_dir=str(tmp_path / "data"), api_port=str(port))
    env |= {
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
        # Nothing is sent on a schedule within the test: only the flush at the end sends.
        "OTEL_BSP_SCHEDULE_DELAY": "3600000",
    }
    env.pop("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", None)
    env.pop("OTEL_SERVICE_NAME", None)

    api = await spawn("api", env=env)
    async with stopped_at_exit(api):
        await read_until(api, "Application startup complete", within=60)
        output = drain(api)
        async with httpx.AsyncClient(timeout=5) as http:
            assert (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
        assert collector.spans == []
        api.send_signal(signal.SIGTERM)
        await asyncio.wait_for(api.wait(), timeout=30)
        assert b"Application shutdown complete" in await output

    [span] = [s for s in collector.spans if s.name == "GET /healthz"]
    assert span.service == "keepwarm-api"
    assert span.kind == ProtoSpan.SPAN_KIND_SERVER
