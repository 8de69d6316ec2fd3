"""Deployment settings, read once at startup from the environment (prefix ``KEEPWARM_``).

Provider credentials keep their providers' usual names (``TWILIO_AUTH_TOKEN`` ...). Workflows
never see settings: what they need travels in their input.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.values import ProviderMode


def _secret(name: str) -> Any:
    """A provider secret read from its provider's usual variable name."""
    return Field(default=None, validation_alias=name)


class Settings(BaseSettings):
    """Every deployment setting. The README lists them; keep the two in step."""

    model_config = SettingsConfigDict(
        env_prefix="KEEPWARM_",
        env_file=None,
        env_ignore_empty=True,
        extra="ignore",
        populate_by_name=True,
    )

    data_dir: Path = Field(
        default=Path("data"), description="Where the embedded stack keeps state."
    )
    database_url: str = Field(
        default="", description="SQLAlchemy URL; empty means SQLite in the data dir."
    )
    temporal_address: str = Field(
        default="", description="host:port of Temporal; empty means `up` starts a dev server."
    )
    temporal_namespace: str = "default"
    temporal_dev_port: int = Field(default=7233, ge=1, le=65535)
    temporal_ui_port: int = Field(default=8233, ge=1, le=65535)
    temporal_ui_url: str = Field(
        default="",
        description="Base URL of the Temporal Web UI; the pages link each lead's workflow there.",
    )
    admin_token: SecretStr | None = None
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    provider_mode: ProviderMode = ProviderMode.DRY_RUN
    dry_run_latency_ms: int = Field(
        default=0, ge=0, le=60_000, description="Simulated provider latency in dry-run mode."
    )
    rate_limit_per_minute: int = Field(
        default=600, ge=0, description="Requests per org per minute per API process; 0 is off."
    )
    public_url: str = Field(default="", description="Externally visible base URL of the API.")
    worker_processes: int = Field(
        default=1, ge=1, le=16, description="Worker processes `up` starts (each uses a core)."
    )
    worker_cached_workflows: int = Field(
        default=1000,
        ge=0,
        le=100_000,
        description="Workflow runs each worker keeps in memory between tasks (a run not kept "
        "replays its history on its next task).",
    )
    worker_activity_threads: int = Field(
        default=32,
        ge=1,
        le=256,
        description="Threads each worker runs activities on (database writes and provider calls).",
    )
    log_level: str = "INFO"
    health_interval: timedelta = Field(
        default=timedelta(minutes=5),
        ge=timedelta(seconds=10),
        le=timedelta(days=1),
        description="How often the `keepwarm-health` schedule runs the checks (ISO 8601, PT5M).",
    )
    workers_absent_after: timedelta = Field(
        default=timedelta(minutes=2),
        ge=timedelta(seconds=5),
        description="No worker poll seen for this long: workers are missing (/readyz, alerts).",
    )
    metrics_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Port of each worker's Temporal SDK metrics for Prometheus; 0 is off.",
    )

    twilio_base_url: str | None = None
    resend_base_url: str | None = None
    stripe_base_url: str | None = None
    vapi_base_url: str | None = None

    twilio_account_sid: str | None = Field(default=None, validation_alias="TWILIO_ACCOUNT_SID")
    twilio_auth_token: SecretStr | None = _secret("TWILIO_AUTH_TOKEN")
    resend_api_key: SecretStr | None = _secret("RESEND_API_KEY")
    resend_webhook_secret: SecretStr | None = _secret("RESEND_WEBHOOK_SECRET")
    stripe_api_key: SecretStr | None = _secret("STRIPE_API_KEY")
    stripe_webhook_secret: SecretStr | None = _secret("STRIPE_WEBHOOK_SECRET")
    vapi_api_key: SecretStr | None = _secret("VAPI_API_KEY")
    vapi_webhook_secret: SecretStr | None = _secret("VAPI_WEBHOOK_SECRET")

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR")
        return level

    @field_validator("public_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def effective_database_url(self) -> str:
        """The configured database URL, or the embedded SQLite file in the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'keepwarm.db').resolve()}"

    @property
    def embedded_temporal(self) -> bool:
        """True when `keepwarm up` must start its own Temporal dev server."""
        return not self.temporal_address

    @property
    def effective_temporal_address(self) -> str:
        """Where clients connect: the configured server or the embedded dev server."""
        return self.temporal_address or f"127.0.0.1:{self.temporal_dev_port}"

    @property
    def effective_temporal_ui_url(self) -> str:
        """The Temporal Web UI's base URL: configured, or the embedded dev server's; empty
        when unknown (the pages then show the workflow id without a link)."""
        if self.temporal_ui_url:
            return self.temporal_ui_url.rstrip("/")
        return f"http://127.0.0.1:{self.temporal_ui_port}" if self.embedded_temporal else ""

    @property
    def effective_public_url(self) -> str:
        """The externally visible base URL, defaulting to the local API address."""
        return self.public_url or f"http://{self.api_host}:{self.api_port}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, validated once."""
    return Settings()
