"""``create_app()``: the FastAPI application. The lifespan opens the engine and Temporal client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import TracerProvider

from api.deps import Database, OrgCache, RateLimiter, TemporalConnection
from api.errors import install_error_handlers
from api.limits import BodySizeLimit
from api.live import LiveHub
from api.openapi import install_openapi
from api.routes import (
    agents,
    alerts,
    attention,
    bookings,
    calls,
    contacts,
    events,
    health,
    leads,
    messages,
    operators,
    orgs,
    payment_requests,
    pipeline,
    providers,
    revenue,
    sequences,
    threads,
    unsubscribe,
    webhooks,
)
from api.sessions import SignInLimiter
from api.sweeper import Sweeper
from api.temporal import install_unavailable_handler
from api.ui import install_ui
from models.database import make_engine
from models.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """The keepwarm API for ``settings`` (default: from the environment)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.effective_database_url)
        app.state.settings = settings
        app.state.database = Database(engine)
        app.state.temporal = TemporalConnection(settings)
        app.state.org_cache = OrgCache()
        app.state.rate_limiter = RateLimiter(per_minute=settings.rate_limit_per_minute)
        app.state.webhook_rejections = webhooks.Rejections()
        app.state.sign_in_limiter = SignInLimiter()
        app.state.live = LiveHub(engine)
        await app.state.live.start()
        app.state.sweeper = Sweeper(database=app.state.database, temporal=app.state.temporal)
        await app.state.sweeper.start()
        try:
            yield
        finally:
            await app.state.sweeper.stop()
            await app.state.live.stop()
            engine.dispose()
            await asyncio.to_thread(_flush_spans)

    app = FastAPI(
        title="keepwarm",
        version="0.1.0",
        summary="Durable follow-up for service businesses: every lead worked until it converts.",
        lifespan=lifespan,
    )
    # Each request is a server span (continuing a caller's ``traceparent``): the root of the
    # trace a webhook or an API call starts through Temporal to the activities.
    # Invite and unsubscribe links carry their secret in the path: no span for them, so the
    # token never reaches the trace collector.
    FastAPIInstrumentor.instrument_app(
        app, exclude_spans=["receive", "send"], excluded_urls="/app/invite/,/u/"
    )
    install_error_handlers(app)
    install_openapi(app, webhooks.PAYLOADS)
    install_ui(app)
    install_unavailable_handler(app)
    app.add_middleware(BodySizeLimit)
    for router in (
        health.router,
        orgs.router,
        attention.router,
        alerts.router,
        leads.router,
        events.router,
        contacts.router,
        messages.router,
        threads.router,
        operators.router,
        providers.router,
        bookings.router,
        payment_requests.router,
        pipeline.router,
        revenue.router,
        agents.router,
        calls.router,
        sequences.router,
        webhooks.router,
        unsubscribe.router,
    ):
        app.include_router(router)
    return app


def _flush_spans() -> None:
    """Send the spans still queued for export (``workers.telemetry`` installs the provider):
    ``keepwarm api`` exits without interpreter teardown, so OpenTelemetry's exit hook never
    runs."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.force_flush()
