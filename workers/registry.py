"""Builds the real activity objects once, from settings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine

from activities.messages import MessageActivities
from activities.records import LeadRecordActivities
from activities.senders import DryRunSender, Sender
from models.settings import Settings
from models.values import Channel, ProviderMode


class LiveModeUnavailable(RuntimeError):
    """``KEEPWARM_PROVIDER_MODE=live`` was asked for but this build only has dry-run adapters."""


def build_senders(settings: Settings) -> dict[Channel, Sender]:
    """The channel adapters for the deployment's provider mode."""
    if settings.provider_mode == ProviderMode.LIVE:
        raise LiveModeUnavailable(
            "KEEPWARM_PROVIDER_MODE=live is not available yet: this release ships dry-run "
            "adapters only (messages are recorded as 'simulated'). Unset it or use dry_run."
        )
    return dry_run_senders(latency=timedelta(milliseconds=settings.dry_run_latency_ms))


def dry_run_senders(*, latency: timedelta = timedelta(0)) -> dict[Channel, Sender]:
    """A dry-run adapter for every messaging channel."""
    dry_run = DryRunSender(latency=latency)
    return {channel: dry_run for channel in (Channel.SMS, Channel.WHATSAPP, Channel.EMAIL)}


def build_activities(
    *, engine: Engine, senders: Mapping[Channel, Sender]
) -> list[Callable[..., Any]]:
    """Every activity the worker registers, bound to its dependencies."""
    records = LeadRecordActivities(engine=engine)
    messages = MessageActivities(engine=engine, senders=senders)
    return [records.record_lead, records.attach_intake, records.record_stage, messages.send_message]
