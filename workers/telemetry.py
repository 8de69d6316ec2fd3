"""Logging, tracing and metrics setup for keepwarm processes.

Spans flow from an HTTP request (the API's FastAPI instrumentation) through Temporal
(``TracingInterceptor``, installed by :func:`workers.client.connect`) to activities and the
provider SDKs' HTTP calls (requests and httpx, instrumented here). They leave the process over
OTLP (http/protobuf) when the standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` variable is set; the exporter reads the other ``OTEL_*``
variables (headers, timeout, compression, certificates) itself.

OpenTelemetry allows one global tracer provider per process. keepwarm installs its own once
(:func:`tracer_provider`) and attaches exporters to it as span processors, so a caller that
wants spans somewhere else (a test's collector) adds its own processor and shuts it down after,
instead of replacing the global.
"""

from __future__ import annotations

import logging
import os

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from models.settings import Settings

log = logging.getLogger("keepwarm.telemetry")

#: The standard variables that turn OTLP export on (either one).
OTLP_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def setup_telemetry(settings: Settings, *, service: str) -> TracerProvider:
    """Configure logging, the process's tracer provider, and OTLP export if it is configured.

    Args:
        settings: The deployment settings (the log level).
        service: What this process is (``api``, ``worker``, ``up`` ...); spans carry
            ``service.name`` ``keepwarm-<service>`` unless ``OTEL_SERVICE_NAME`` says otherwise.

    Returns:
        The process's tracer provider, exporting over OTLP when an ``OTEL_EXPORTER_OTLP_*``
        endpoint is set. Call :func:`flush_spans` before the process exits.
    """
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    provider = tracer_provider(service=service)
    exporter = otlp_exporter()
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
        endpoint = next(
            os.environ[name] for name in OTLP_ENDPOINT_VARIABLES if os.environ.get(name)
        )
        log.info("exporting spans over OTLP (http/protobuf) to %s", endpoint)
    return provider


def tracer_provider(*, service: str) -> TracerProvider:
    """The process's tracer provider, installed as the global one on first use.

    A later call returns the provider already installed (OpenTelemetry keeps the first), so
    ``service`` names the process only the first time. The HTTP clients the provider SDKs use
    (requests: Twilio, Stripe, Resend; httpx: Vapi) are instrumented once, so a provider call
    is a child span of the activity that makes it.
    """
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    name = os.environ.get("OTEL_SERVICE_NAME") or f"keepwarm-{service}"
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    trace.set_tracer_provider(provider)
    for instrumentor in (RequestsInstrumentor(), HTTPXClientInstrumentor()):
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(tracer_provider=provider)
    return provider


def otlp_exporter() -> OTLPSpanExporter | None:
    """An OTLP/HTTP (protobuf) span exporter configured by the ``OTEL_*`` variables, or
    ``None`` when neither ``OTEL_EXPORTER_OTLP_ENDPOINT`` nor
    ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set (without one the exporter would post to
    localhost:4318 whether or not a collector is there)."""
    if not any(os.environ.get(variable) for variable in OTLP_ENDPOINT_VARIABLES):
        return None
    return OTLPSpanExporter()


def flush_spans() -> None:
    """Send the spans still queued for export; a no-op without keepwarm's tracer provider.

    Called when the API's lifespan ends and when a worker stops: the ``keepwarm`` command
    exits without interpreter teardown, so OpenTelemetry's own exit hook never runs. Blocks
    for at most the exporter's timeout (``OTEL_EXPORTER_OTLP_TIMEOUT``, 10 s by default).
    """
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.force_flush()


def metrics_runtime(settings: Settings) -> Runtime | None:
    """A Temporal runtime serving the SDK's metrics for Prometheus, or ``None`` when
    ``KEEPWARM_METRICS_PORT`` is unset.

    The metrics are served at ``http://<KEEPWARM_API_HOST>:<KEEPWARM_METRICS_PORT>/metrics``.
    Build it once per process (it binds the port) and only in a worker: the API and the
    ``keepwarm`` command's own clients use the default runtime.
    """
    if not settings.metrics_port:
        return None
    host = f"[{settings.api_host}]" if ":" in settings.api_host else settings.api_host
    address = f"{host}:{settings.metrics_port}"
    log.info("serving Temporal SDK metrics for Prometheus on http://%s/metrics", address)
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=address)))
