"""Bookings as the API takes and gives them (API.md "Appointments and the people who do the
work"); ``BookingIn`` itself is with the other intake models."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, model_validator

from models.schemas.fields import DateTime, StrictModel, Text
from models.values import BookingStatus, VisitEvent


class BookingPatch(StrictModel):
    """``PATCH /v1/bookings/{id}``: move the visit, or give it to another provider (give
    starts_at, ends_at or provider_id; ends_at must be after starts_at)."""

    starts_at: DateTime | None = None
    ends_at: DateTime | None = None
    provider_id: Text | None = Field(default=None, min_length=1, max_length=40)

    @model_validator(mode="after")
    def _something(self) -> BookingPatch:
        if self.starts_at is None and self.ends_at is None and self.provider_id is None:
            raise ValueError("give starts_at, ends_at or provider_id")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class BookingCancel(StrictModel):
    """``POST /v1/bookings/{id}/cancel``."""

    reason: Text | None = Field(default=None, max_length=500)


class BookingEventIn(StrictModel):
    """``POST /v1/bookings/{id}/events``: the provider's news of the visit (``at``, if
    given, is not in the future)."""

    kind: VisitEvent
    #: When it happened (default: now); not in the future.
    at: DateTime | None = None


class BookingChangeOut(BaseModel):
    """What a change did: the booking's status and version after it."""

    booking_id: str
    status: BookingStatus
    version: int
    changed: bool


class ReminderOut(BaseModel):
    """One reminder of the visit's current time."""

    #: How long before the visit, in seconds.
    offset_s: int
    #: When it goes (or went); ``None`` if it doesn't.
    at: datetime | None
    #: ``pending``, ``sent`` or ``skipped``.
    status: str
    #: Why it moved or is skipped.
    note: str


class BookingOut(BaseModel):
    """A booking, as lists show it."""

    booking_id: str
    lead_id: str
    workflow_id: str
    provider_id: str | None
    provider_name: str | None
    starts_at: datetime
    ends_at: datetime | None
    service: str | None
    address: str | None
    status: BookingStatus
    #: How many times the visit's time was set (1: never moved).
    version: int
    confirmed_at: datetime | None
    reschedule_requested_at: datetime | None
    on_my_way_at: datetime | None
    arrived_at: datetime | None
    completed_at: datetime | None
    no_show_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    rating: int | None
    complained: bool
    reminders: list[ReminderOut]
    created_at: datetime


class BookingTimelineItem(BaseModel):
    """One line of a booking's timeline."""

    at: datetime
    summary: str
    data: dict[str, Any]


class BookingDetail(BookingOut):
    """``GET /v1/bookings/{id}``: the booking and its timeline, oldest first."""

    note: str | None
    timeline: list[BookingTimelineItem]


class BookingList(BaseModel):
    """``GET /v1/bookings``: visits starting in the window, soonest first."""

    items: list[BookingOut]
