"""The booking reads an ``Appointment`` workflow acts on (its sends go through
``MessageActivities.send_appointment_message``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from temporalio import activity

from activities.records import record
from models.payloads import AppointmentState
from models.services.bookings import appointment_state


@dataclass(frozen=True, kw_only=True)
class AppointmentStateInput:
    """Read a booking as it is now (planning a new time's reminders at ``now``)."""

    org_id: str
    booking_id: str
    #: The workflow's time: what a new time's reminders are planned from.
    now: datetime


class AppointmentActivities:
    """Reads and notes a booking for its workflow."""

    def __init__(self, *, engine: Engine) -> None:
        """Read and write bookings in ``engine``."""
        self._engine = engine

    @activity.defn(name="appointment_state")
    def appointment_state(self, input: AppointmentStateInput) -> AppointmentState:
        """The booking now: its version, status, reminders (planned on a new version's first
        read, and noted on its timeline) and what the customer and provider have said."""
        return record(
            self._engine,
            appointment_state,
            org_id=input.org_id,
            booking_id=input.booking_id,
            now=input.now,
        )
