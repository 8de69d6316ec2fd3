"""Every workflow a keepwarm worker runs (kept out of the package's ``__init__`` so that the
sandbox, which re-imports a workflow's module for each run, imports only that one)."""

from __future__ import annotations

from workflows.alert import AlertWorkflow
from workflows.appointment import AppointmentWorkflow
from workflows.calls import CallRetryWorkflow, CallWorkflow
from workflows.confirmation import ConfirmationWorkflow
from workflows.escalation import EscalationWorkflow
from workflows.health import HealthCheckWorkflow
from workflows.lead import LeadWorkflow
from workflows.nudge import NudgeSequenceWorkflow
from workflows.payment import PaymentFollowupWorkflow
from workflows.retry import RetrySendWorkflow
from workflows.takeover import HumanReplyWorkflow, TakeoverWorkflow

WORKFLOWS: tuple[type, ...] = (
    LeadWorkflow,
    NudgeSequenceWorkflow,
    CallWorkflow,
    CallRetryWorkflow,
    ConfirmationWorkflow,
    EscalationWorkflow,
    TakeoverWorkflow,
    HumanReplyWorkflow,
    RetrySendWorkflow,
    AlertWorkflow,
    HealthCheckWorkflow,
    AppointmentWorkflow,
    PaymentFollowupWorkflow,
)
