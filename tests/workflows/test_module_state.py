"""Workflow modules keep no mutable state: the worker imports them once per process (the
sandbox passes modules through), so module-level state would leak from one run to the next."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import workflows

MUTABLE = (list, dict, set, bytearray)


def module_state(module: Any) -> list[str]:
    return [
        name
        for name, value in vars(module).items()
        if isinstance(value, MUTABLE)
        and name not in {"__all__", "__path__", "__builtins__"}
        and not name.startswith("__")
    ]


def test_no_workflow_module_holds_mutable_state() -> None:
    found = {}
    for info in pkgutil.iter_modules(workflows.__path__):
        module = importlib.import_module(f"workflows.{info.name}")
        if state := module_state(module):
            found[info.name] = state
    assert found == {}


def test_the_check_sees_module_state() -> None:
    class Fake:
        pass

    fake = Fake()
    fake.SEEN = []  # type: ignore[attr-defined]
    assert module_state(fake) == ["SEEN"]
