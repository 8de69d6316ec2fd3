"""Deterministic business processes, one module each.

Workflow code does no I/O: no settings, no clock, no randomness, no database. What a
workflow needs comes in its input or from an activity.
"""
