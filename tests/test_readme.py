"""The README stays in step with the code: every setting listed, the two commands real."""

from __future__ import annotations

import re
from pathlib import Path

from models.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_every_setting_is_listed() -> None:
    names = {
        field.validation_alias
        if isinstance(field.validation_alias, str)
        else f"KEEPWARM_{name.upper()}"
        for name, field in Settings.model_fields.items()
    }

    missing = sorted(name for name in names if f"`{name}`" not in README)

    assert missing == []


def test_the_two_commands_are_makefile_targets() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z]+):", makefile, flags=re.MULTILINE))

    assert "make run " in README
    assert "make test " in README
    assert {"run", "test"} <= targets


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()
