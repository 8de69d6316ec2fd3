"""Builds the real activity objects once, from settings."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine
from temporalio.client import Client

from activities.alerts import AlertActivities
from activities.appointments import AppointmentActivities
from activities.calls import CallActivities
from activities.email import ResendEmail
from activities.escalations import EscalationActivities
from activities.health import HealthActivities
from activities.messages import MessageActivities
from activities.payment_requests import PaymentRequestActivities
from activities.payments import DryRunPaymentLinks, PaymentLinks, StripePayments
from activities.probes import ProbeActivities, ProviderProbe, ResendProbe, StripeProbe, TwilioProbe
from activities.records import LeadRecordActivities
from activities.senders import DryRunSender, Sender
from activities.sms import TwilioSms
from activities.voice import CallPlacer, DryRunCalls
from models.settings import Settings
from models.values import Channel, ProviderMode, WebhookProvider
from workers.presence import TemporalHealth

log = logging.getLogger("keepwarm.registry")


@dataclass(kw_only=True)
class Adapters:
    """The channel adapters a worker sends through, per provider mode.

    ``dry_run`` adapters are always there; ``live`` ones only where the deployment runs live
    and has the provider's credentials. Each message uses its org's mode.
    """

    senders: dict[ProviderMode, dict[Channel, Sender]] = field(default_factory=dict)
    placers: dict[ProviderMode, CallPlacer] = field(default_factory=dict)
    #: Base of the links the providers call back (status callbacks, unsubscribe).
    public_url: str = "http://127.0.0.1:8000"
    #: Payment links per provider mode (dry run: simulated; live: Stripe, with its key).
    payments: dict[ProviderMode, PaymentLinks] = field(default_factory=dict)
    #: Credential probes, for each provider the deployment has credentials for (either mode).
    probes: dict[WebhookProvider, ProviderProbe] = field(default_factory=dict)


def build_adapters(settings: Settings) -> Adapters:
    """Dry-run adapters, plus live ones on the provider SDKs when the deployment runs live."""
    adapters = dry_run_adapters(
        latency=timedelta(milliseconds=settings.dry_run_latency_ms),
        public_url=settings.effective_public_url,
    )
    adapters.probes = build_probes(settings)
    if settings.provider_mode != ProviderMode.LIVE:
        return adapters
    live: dict[Channel, Sender] = {}
    if settings.twilio_account_sid and settings.twilio_auth_token:
        for channel in (Channel.SMS, Channel.WHATSAPP):
            live[channel] = TwilioSms(
                account_sid=settings.twilio_account_sid,
                auth_token=settings.twilio_auth_token.get_secret_value(),
                base_url=settings.twilio_base_url,
                whatsapp=channel == Channel.WHATSAPP,
            )
    if settings.resend_api_key:
        live[Channel.EMAIL] = ResendEmail(
            api_key=settings.resend_api_key.get_secret_value(), base_url=settings.resend_base_url
        )
    adapters.senders[ProviderMode.LIVE] = live
    if settings.stripe_api_key:
        adapters.payments[ProviderMode.LIVE] = StripePayments(
            api_key=settings.stripe_api_key.get_secret_value(), base_url=settings.stripe_base_url
        )
    if settings.vapi_api_key:
        from activities.vapi_calls import VapiCalls  # the Vapi SDK takes seconds to import

        adapters.placers[ProviderMode.LIVE] = VapiCalls(
            api_key=settings.vapi_api_key.get_secret_value(), base_url=settings.vapi_base_url
        )
    missing = [
        name
        for name, ready in (
            ("SMS/WhatsApp (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN)", Channel.SMS in live),
            ("email (RESEND_API_KEY)", Channel.EMAIL in live),
            ("voice (VAPI_API_KEY)", ProviderMode.LIVE in adapters.placers),
            ("payments (STRIPE_API_KEY)", ProviderMode.LIVE in adapters.payments),
        )
        if not ready
    ]
    if missing:
        log.warning("live mode without credentials for: %s", ", ".join(missing))
    return adapters


def build_probes(settings: Settings) -> dict[WebhookProvider, ProviderProbe]:
    """A probe for each provider the deployment has credentials for, whatever its provider
    mode: a dry-run deployment with keys set still wants to know they work. The others are
    ``not_configured`` (``activities.probes``)."""
    probes: dict[WebhookProvider, ProviderProbe] = {}
    if settings.twilio_account_sid and settings.twilio_auth_token:
        probes[WebhookProvider.TWILIO] = TwilioProbe(
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token.get_secret_value(),
            base_url=settings.twilio_base_url,
        )
    if settings.resend_api_key:
        probes[WebhookProvider.RESEND] = ResendProbe(
            api_key=settings.resend_api_key.get_secret_value(), base_url=settings.resend_base_url
        )
    if settings.stripe_api_key:
        probes[WebhookProvider.STRIPE] = StripeProbe(
            api_key=settings.stripe_api_key.get_secret_value(), base_url=settings.stripe_base_url
        )
    if settings.vapi_api_key:
        from activities.vapi_calls import VapiProbe  # the Vapi SDK takes seconds to import

        probes[WebhookProvider.VAPI] = VapiProbe(
            api_key=settings.vapi_api_key.get_secret_value(), base_url=settings.vapi_base_url
        )
    return probes


def dry_run_adapters(
    *, latency: timedelta = timedelta(0), public_url: str = "http://127.0.0.1:8000"
) -> Adapters:
    """A dry-run adapter for every channel: nothing leaves the machine."""
    dry_run = DryRunSender(latency=latency)
    return Adapters(
        senders={
            ProviderMode.DRY_RUN: {
                channel: dry_run for channel in (Channel.SMS, Channel.WHATSAPP, Channel.EMAIL)
            }
        },
        placers={ProviderMode.DRY_RUN: DryRunCalls(latency=latency)},
        payments={ProviderMode.DRY_RUN: DryRunPaymentLinks()},
        public_url=public_url,
    )


def build_activities(
    *, engine: Engine, adapters: Adapters, client: Client
) -> list[Callable[..., Any]]:
    """Every activity the worker registers, bound to its dependencies (``client``: the
    health check asks Temporal about itself and tells the alerts)."""
    records = LeadRecordActivities(engine=engine)
    messages = MessageActivities(
        engine=engine, senders=adapters.senders, public_url=adapters.public_url
    )
    calls = CallActivities(engine=engine, placers=adapters.placers)
    escalations = EscalationActivities(engine=engine)
    alerts = AlertActivities(engine=engine, messages=messages, public_url=adapters.public_url)
    probes = ProbeActivities(probes=adapters.probes)
    health = HealthActivities(engine=engine, temporal=TemporalHealth(client))
    appointments = AppointmentActivities(engine=engine)
    payments = PaymentRequestActivities(engine=engine, links=adapters.payments)
    return [
        records.record_lead,
        records.attach_intake,
        records.record_stage,
        records.next_sequence_step,
        messages.send_message,
        messages.send_confirmation,
        calls.place_call,
        calls.plan_call,
        calls.look_up_call,
        calls.calls_exhausted,
        calls.escalation_ladder,
        messages.send_notification,
        messages.send_reply,
        messages.send_system_message,
        messages.retry_send,
        escalations.route_escalation,
        escalations.check_takeover,
        alerts.record_alert,
        alerts.send_alert_notices,
        probes.probe_provider,
        health.sample_temporal,
        health.assess_health,
        health.raise_alerts,
        appointments.appointment_state,
        messages.send_appointment_message,
        payments.create_payment_link,
        payments.payment_request_state,
        payments.give_up_payment_request,
        messages.send_payment_message,
    ]
