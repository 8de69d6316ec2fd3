"""Deterministic business processes, one module each.

Workflow code does no I/O: no settings, no clock, no randomness, no database. What a
workflow needs comes in its input or from an activity.
"""

from __future__ import annotations

from workflows.calls import CallWorkflow
from workflows.lead import LeadWorkflow
from workflows.nudge import NudgeSequenceWorkflow

WORKFLOWS: list[type] = [LeadWorkflow, NudgeSequenceWorkflow, CallWorkflow]
