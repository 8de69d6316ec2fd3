"""What an audit entry says about a settings change (models/rules/settings_changes.py)."""

from __future__ import annotations

from datetime import timedelta

from models.rules.settings_changes import (
    SUMMARY_LIMIT,
    describe_changes,
    human_duration,
    section_of,
    summarize,
)
from models.schemas import OrgSettings


def test_durations_read_as_a_person_says_them() -> None:
    assert human_duration(timedelta(minutes=5)) == "5 min"
    assert human_duration(timedelta(hours=2)) == "2 h"
    assert human_duration(timedelta(days=1)) == "1 day"
    assert human_duration(timedelta(days=2, hours=3, minutes=30)) == "2 days 3 h 30 min"
    assert human_duration(timedelta(seconds=90)) == "1 min 30 s"
    assert human_duration(timedelta(seconds=1.5)) == "1.5 s"


def test_a_patch_of_one_own_section_is_filed_under_it_and_any_other_under_general() -> None:
    assert section_of({"quiet_hours": {}}) == "quiet_hours"
    assert section_of({"provider_mode": "live"}) == "provider_mode"
    assert section_of({"scoring": {}}) == "scoring"
    assert section_of({"timezone": "UTC"}) == "general"
    assert section_of({"quiet_hours": {}, "timezone": "UTC"}) == "general"


def test_each_changed_setting_is_one_line_in_plain_words() -> None:
    before = OrgSettings()
    after = OrgSettings.model_validate(
        {
            "provider_mode": "live",
            "quiet_hours": {"email": ["09:00", "17:00"], "sms": None},
            "help_reply": "Shine: call 020 7946 0000",
            "scoring": {"words": {"urgent": 25, "asap": 20, "refund": -10}, "base": 5},
        }
    )

    lines = describe_changes(before, after)

    assert lines[:4] == [
        "Provider mode: dry run → live",
        "Quiet hours SMS: 08:00\N{EN DASH}21:00 → any time",
        "Quiet hours email: any time → 09:00\N{EN DASH}17:00",
        "Help reply: none → “Shine: call 020 7946 0000”",
    ]
    assert "Scoring base points: 10 → 5" in lines
    assert "Scoring word “urgent”: +20 → +25" in lines
    assert "Scoring word “today”: removed (was +10)" in lines
    assert "Scoring word “refund”: added, -10" in lines
    assert describe_changes(after, after) == []


def test_a_heartbeat_url_is_never_written_into_the_list() -> None:
    url = "https://hc-ping.com/5f1c3a1e-private"
    with_url = OrgSettings.model_validate({"alerts": {"heartbeat_url": url}})

    lines = [
        *describe_changes(OrgSettings(), with_url),
        *describe_changes(with_url, OrgSettings()),
    ]

    assert lines == ["Heartbeat URL: set", "Heartbeat URL: removed"]


def test_a_long_summary_fits_its_column_and_counts_what_it_left_out() -> None:
    lines = [f"Setting {n}: {'x' * 40} → {'y' * 40}" for n in range(20)]

    summary = summarize(lines)

    assert len(summary) <= SUMMARY_LIMIT
    assert summary.startswith("Setting 0: ")
    shown = summary.count("→")
    assert summary.endswith(f"; and {20 - shown} more")
    assert summarize(["One: a → b"]) == "One: a → b"
