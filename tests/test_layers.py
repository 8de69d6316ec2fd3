"""The code's layers, read from its imports (every import, including those inside functions):
no circle between product modules, and every arrow pointing the way STYLE.md says."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("models", "workflows", "activities", "workers", "api")
#: ``models`` modules below every layer: settings, tables, values, schemas, errors, ids...
BASE = "models.base"
#: Which layer may import which (a layer may always import itself and anything below).
ALLOWED: dict[str, set[str]] = {
    BASE: {BASE},
    "models.rules": {BASE, "models.rules"},
    "models.store": {BASE, "models.rules", "models.store"},
    "models.services": {BASE, "models.rules", "models.store", "models.services"},
    "models.reads": {BASE, "models.rules", "models.store", "models.services", "models.reads"},
    # Workflows are deterministic: pure rules, values and ids, their payload types, and the
    # activity definitions they call (imported through the sandbox's pass-through).
    "workflows": {BASE, "models.rules", "workflows", "activities"},
    "activities": {BASE, "models.rules", "models.store", "models.services", "activities"},
    # The API builds its Temporal client with the one client factory (workers.client), and
    # asks Temporal which workers poll the way the health check does (workers.presence).
    "api": {
        BASE,
        "models.rules",
        "models.services",
        "models.reads",
        "workflows",
        "api",
        "workers.client",
        "workers.presence",
    },
    "workers": set(PACKAGES)
    | {BASE, "models.rules", "models.store", "models.services", "models.reads"},
}
#: What workflows may take from the base layer (no database, no settings, no clock).
WORKFLOW_BASE = {"models.values", "models.ids", "models.schemas", "models.payloads"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def product_modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts:
                found[module_name(path)] = path
    return found


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """The product modules ``path`` imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name.split(".")[0] in PACKAGES:
                found.add(name)
    return found


def layer_of(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "models":
        return parts[0]
    if len(parts) > 1 and parts[1] in ("rules", "store", "services", "reads"):
        return f"models.{parts[1]}"
    return BASE


def graph() -> dict[str, set[str]]:
    modules = product_modules()
    return {
        name: {imported for imported in imports_of(path, modules) if imported != name}
        for name, path in modules.items()
    }


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in edges.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_circle_between_product_modules() -> None:
    assert circles(graph()) == []


def test_every_import_points_down_the_layers() -> None:
    wrong = []
    for module, imported in sorted(graph().items()):
        layer = layer_of(module)
        for target in sorted(imported):
            target_layer = layer_of(target)
            allowed = ALLOWED[layer]
            if target_layer not in allowed and target not in allowed:
                wrong.append(f"{module} -> {target}")
            elif layer == "workflows" and target_layer == BASE and target not in WORKFLOW_BASE:
                wrong.append(f"{module} -> {target} (workflows read no database or settings)")
    assert wrong == []


def test_no_route_module_imports_another() -> None:
    edges = graph()
    routes = {name for name in edges if name.startswith("api.routes.")}
    wrong = [
        f"{name} -> {other}"
        for name in sorted(routes)
        for other in sorted(edges[name] & routes)
        if not (other.startswith(name + ".") or name.startswith(other + "."))
        and other.rpartition(".")[0] != name.rpartition(".")[0]
    ]
    assert wrong == []


def test_the_check_sees_a_circle() -> None:
    """The circle finder itself: it must find one where there is one."""
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []
