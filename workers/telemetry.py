"""Logging and tracing setup for keepwarm processes."""

from __future__ import annotations

import logging

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from models.settings import Settings


def setup_telemetry(settings: Settings, *, service: str) -> None:
    """Configure logging at the configured level and an OpenTelemetry tracer provider.

    Spans flow from the API through Temporal (``TracingInterceptor``) to activities; an
    exporter is attached by the deployment (for example through ``OTEL_*`` variables).
    """
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(
            TracerProvider(resource=Resource.create({"service.name": f"keepwarm-{service}"}))
        )
