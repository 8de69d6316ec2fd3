"""The people who do the visits (cleaners, technicians): ``/v1/providers``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from models.schemas.fields import E164, Email, NonBlankText, StrictModel


class ProviderCreate(StrictModel):
    """``POST /v1/providers``."""

    name: NonBlankText = Field(min_length=1, max_length=200)
    phone: E164 | None = None
    email: Email | None = Field(default=None, max_length=320)

    @field_validator("name")
    @classmethod
    def _named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return " ".join(value.split())

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str | None) -> str | None:
        return value.strip().lower() if value else value


class ProviderCreated(BaseModel):
    """The new provider's id."""

    id: str


class ProviderPublic(BaseModel):
    """A provider of the org."""

    id: str
    name: str
    phone: str | None
    email: str | None
    created_at: datetime


class ProviderList(BaseModel):
    """The org's providers, by name."""

    items: list[ProviderPublic]


#: What a flag is about: arriving late, missing visits, low ratings, complaints.
FlagKind = Literal["late", "no_show", "low_rating", "complaint"]


class PerformanceFlag(BaseModel):
    """A figure of the window that is worse than the provider's usual, with its evidence."""

    kind: FlagKind
    summary: str
    #: The window's visits that count against the provider, earliest first.
    booking_ids: list[str]
    #: The one-sided binomial test's p-value against the provider's usual rate.
    p_value: float


class ProviderPerformance(BaseModel):
    """``GET /v1/providers/{provider_id}/performance``: the provider's visits that started
    in ``[from, to)`` and were due by the time of the request (cancelled ones aside)."""

    model_config = ConfigDict(populate_by_name=True)

    provider_id: str
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    visits: int
    #: Attended (arrived, or completed) of the visits due.
    attended_rate: float | None
    #: Arrived within the org's ``appointments.on_time_grace`` of the start, of those with
    #: an arrival time.
    on_time_rate: float | None
    average_rating: float | None
    ratings: int
    #: Complained about, of the visits attended.
    complaint_rate: float | None
    #: Seconds after the start, of those with an arrival time (early counts as 0).
    average_lateness_s: float | None
    flags: list[PerformanceFlag]
