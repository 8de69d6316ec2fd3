"""Static checks of the production compose stack (``temporal-compose.yml``) and its image.

Docker is not needed: the files are parsed and checked against the application's
``Settings`` so that a renamed setting or a typo in a variable name fails here rather
than silently at deploy time.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices

from models.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "temporal-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

SERVICES = frozenset({"postgresql", "temporal", "temporal-ui", "keepwarm-migrate", "api", "worker"})
ONE_SHOT_SERVICES = frozenset({"keepwarm-migrate"})
KEEPWARM_COMMANDS = {
    "keepwarm-migrate": "keepwarm migrate",
    "api": "keepwarm api",
    "worker": "keepwarm worker",
}
REQUIRED_SECRETS = ("POSTGRES_PASSWORD", "KEEPWARM_ADMIN_TOKEN", "KEEPWARM_PUBLIC_URL")
PACKAGES = ("models", "workflows", "activities", "workers", "api")

# Read by compose itself to shape the stack, never by the application, so no Settings
# field exists for them.
COMPOSE_ONLY_VARIABLES = frozenset({"KEEPWARM_WORKER_REPLICAS"})

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, ${NAME:+alt};
# `$${` is compose's escape for a literal `${` and is not a reference.
_REFERENCE = re.compile(
    r"(?<!\$)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<operator>:?[-?+])(?P<argument>[^}]*))?\}"
)
_KEEPWARM_NAME = re.compile(r"\bKEEPWARM_[A-Z0-9_]+\b")
_SECRET_KEY = re.compile(r"PASSWORD|PWD|TOKEN|SECRET|API_KEY|ACCOUNT_SID")
_URL_PASSWORD = re.compile(r"://[^:/@\s]+:(?P<password>[^@\s]+)@")


@dataclass(frozen=True)
class Reference:
    """One ``${...}`` variable reference in the compose file.

    Attributes:
        name: The variable name.
        operator: ``""`` for a plain reference, else one of ``:-``, ``-``, ``:?``, ``?``,
            ``:+``, ``+``.
        argument: The default value, error message or alternative after the operator.
    """

    name: str
    operator: str
    argument: str


def find_references(text: str) -> list[Reference]:
    """Find every ``${VAR...}`` reference in a piece of compose text.

    Args:
        text: Raw text, a whole file or a single value.

    Returns:
        The references in order of appearance.
    """
    return [
        Reference(match["name"], match["operator"] or "", match["argument"] or "")
        for match in _REFERENCE.finditer(text)
    ]


def is_single_reference(value: str) -> bool:
    """Tell whether a value is nothing but one ``${VAR...}`` reference.

    Args:
        value: A compose value.

    Returns:
        True when the whole value is one reference, so no literal text is in it.
    """
    return _REFERENCE.fullmatch(value) is not None


@functools.cache
def compose_text() -> str:
    """Return the raw text of the compose file."""
    return COMPOSE_FILE.read_text(encoding="utf-8")


@functools.cache
def compose() -> dict[str, Any]:
    """Return the parsed compose file (YAML anchors and merge keys resolved)."""
    document = yaml.safe_load(compose_text())
    assert isinstance(document, dict)
    return document


def service(name: str) -> dict[str, Any]:
    """Return one service's definition.

    Args:
        name: The service name.

    Returns:
        The service mapping.
    """
    definition = compose()["services"][name]
    assert isinstance(definition, dict)
    return definition


def environment(definition: dict[str, Any]) -> dict[str, str]:
    """Normalise an ``environment`` section, in mapping or ``KEY=value`` list form.

    Args:
        definition: A service definition, or any mapping with an ``environment`` key.

    Returns:
        Variable names mapped to their (uninterpolated) values.
    """
    section = definition.get("environment") or {}
    if isinstance(section, list):
        pairs = (str(item).partition("=") for item in section)
        return {key: value for key, _, value in pairs}
    return {str(key): "" if value is None else str(value) for key, value in section.items()}


def port_mappings(definition: dict[str, Any]) -> list[tuple[str, str]]:
    """List a service's published ports.

    Args:
        definition: A service definition.

    Returns:
        ``(published, target)`` pairs; ``published`` may carry a host IP and references.
    """
    mappings: list[tuple[str, str]] = []
    for port in definition.get("ports", []):
        if isinstance(port, dict):
            mappings.append((str(port.get("published", "")), str(port["target"])))
        else:
            published, _, target = str(port).rpartition(":")
            mappings.append((published, target.removesuffix("/tcp")))
    return mappings


def command(definition: dict[str, Any]) -> str:
    """Return a service's command as one space-separated string.

    Args:
        definition: A service definition.

    Returns:
        The command, whether written as a string or a list.
    """
    value = definition.get("command", "")
    return " ".join(value) if isinstance(value, list) else str(value)


def setting_variables() -> set[str]:
    """Return the environment variable name of every ``Settings`` field.

    Fields with a ``validation_alias`` (the provider credentials) are read under that
    alias; every other field under ``KEEPWARM_`` plus its upper-cased name.

    Returns:
        The variable names the application reads.
    """
    names: set[str] = set()
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if alias is None:
            names.add("KEEPWARM_" + field_name.upper())
        elif isinstance(alias, str):
            names.add(alias)
        elif isinstance(alias, AliasChoices):
            names.update(choice for choice in alias.choices if isinstance(choice, str))
    return names


def dockerfile_copy_sources() -> set[str]:
    """Return every source path named by a ``COPY`` instruction of the Dockerfile."""
    sources: set[str] = set()
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        words = line.split()
        if not words or words[0].upper() != "COPY":
            continue
        paths = [word for word in words[1:] if not word.startswith("--")]
        sources.update(path.removeprefix("./").rstrip("/") for path in paths[:-1])
    return sources


def test_reference_finder_parses_operators() -> None:
    """The helper reads names, operators and arguments, and skips ``$${`` escapes."""
    text = "a ${ONE} b ${TWO:-2} c ${THREE:?say so} d $${NOT_ONE}"
    assert find_references(text) == [
        Reference("ONE", "", ""),
        Reference("TWO", ":-", "2"),
        Reference("THREE", ":?", "say so"),
    ]


def test_all_services_are_defined() -> None:
    """Every service of the stack is defined."""
    missing = SERVICES - set(compose()["services"])
    assert not missing, f"missing services: {sorted(missing)}"


def test_keepwarm_services_run_the_built_image() -> None:
    """Migrate, API and worker run their own role of the image built from the repo."""
    for name, expected in KEEPWARM_COMMANDS.items():
        definition = service(name)
        assert command(definition) == expected, name
        assert definition.get("build") == ".", name
        assert definition.get("image") == "keepwarm:latest", name


def test_migrate_is_one_shot_and_gates_the_app() -> None:
    """Migrations run once, and API and worker only start after they succeeded."""
    assert service("keepwarm-migrate").get("restart") == "no"
    for name in ("api", "worker"):
        depends_on = service(name)["depends_on"]
        assert depends_on["keepwarm-migrate"]["condition"] == "service_completed_successfully"
        assert depends_on["temporal"]["condition"] == "service_healthy"


def test_api_publishes_port_8000() -> None:
    """The API's container port 8000 is published on a configurable host port."""
    published = [p for p, target in port_mappings(service("api")) if target == "8000"]
    assert published, "api does not publish port 8000"
    assert Reference("KEEPWARM_API_PORT", ":-", "8000") in find_references(published[0])


def test_temporal_ui_publishes_the_ui_port() -> None:
    """The Temporal UI's port 8080 is published on ``KEEPWARM_TEMPORAL_UI_PORT``."""
    published = [p for p, target in port_mappings(service("temporal-ui")) if target == "8080"]
    assert published, "temporal-ui does not publish port 8080"
    assert Reference("KEEPWARM_TEMPORAL_UI_PORT", ":-", "8233") in find_references(published[0])
    assert environment(service("temporal-ui"))["TEMPORAL_ADDRESS"] == "temporal:7233"


def test_temporal_exposes_its_frontend_port() -> None:
    """Temporal's gRPC frontend is reachable on 7233."""
    mappings = port_mappings(service("temporal"))
    assert any(p.endswith("7233") and target == "7233" for p, target in mappings)


@pytest.mark.parametrize("name", sorted(SERVICES - ONE_SHOT_SERVICES))
def test_long_running_services_have_healthchecks(name: str) -> None:
    """Every service but the one-shot migration declares a real healthcheck."""
    healthcheck = service(name).get("healthcheck")
    assert isinstance(healthcheck, dict), f"{name} has no healthcheck"
    assert not healthcheck.get("disable", False)
    assert healthcheck.get("test"), f"{name}'s healthcheck has no test"


def test_api_healthcheck_probes_readiness() -> None:
    """The API is healthy only when its readiness endpoint answers."""
    probe = " ".join(service("api")["healthcheck"]["test"])
    assert "http://127.0.0.1:8000/readyz" in probe


def test_keepwarm_services_share_one_environment() -> None:
    """Migrate, API and worker all see exactly the shared ``x-keepwarm-env`` block."""
    shared = environment({"environment": compose()["x-keepwarm-env"]})
    for name in KEEPWARM_COMMANDS:
        assert environment(service(name)) == shared, name


@pytest.mark.parametrize("variable", REQUIRED_SECRETS)
def test_required_secrets_must_be_set(variable: str) -> None:
    """Each required secret is referenced, only ever as ``${VAR:?message}``."""
    references = [r for r in find_references(compose_text()) if r.name == variable]
    assert references, f"{variable} is never referenced"
    for reference in references:
        assert reference.operator == ":?", f"{variable} used as {reference}"
        assert reference.argument.strip(), f"{variable} has no error message"


def test_no_secret_is_written_literally() -> None:
    """Secret-looking values and URL passwords come from variables, never the file."""
    sections = {"x-keepwarm-env": environment({"environment": compose()["x-keepwarm-env"]})}
    sections.update({name: environment(d) for name, d in compose()["services"].items()})
    for section, variables in sections.items():
        for key, value in variables.items():
            if _SECRET_KEY.search(key):
                assert is_single_reference(value), f"{section}.{key} is a literal"
            for match in _URL_PASSWORD.finditer(value):
                password = match["password"]
                assert is_single_reference(password), f"{section}.{key} has a literal password"


def test_database_url_uses_the_postgres_password() -> None:
    """The app reaches the stack's PostgreSQL with the password the server was given."""
    url = environment({"environment": compose()["x-keepwarm-env"]})["KEEPWARM_DATABASE_URL"]
    assert url.startswith("postgresql+psycopg://keepwarm:")
    assert [r.name for r in find_references(url)] == ["POSTGRES_PASSWORD"]
    assert url.endswith("@postgresql:5432/keepwarm")


def test_worker_replicas_are_configurable() -> None:
    """The number of workers comes from ``KEEPWARM_WORKER_REPLICAS`` with a default."""
    replicas = str(service("worker")["deploy"]["replicas"])
    assert is_single_reference(replicas)
    (reference,) = find_references(replicas)
    assert reference.name == "KEEPWARM_WORKER_REPLICAS"
    assert reference.operator == ":-"
    assert reference.argument.isdigit()


def test_compose_only_variables_are_not_settings() -> None:
    """The compose-only allowance goes stale if such a variable becomes a setting."""
    assert COMPOSE_ONLY_VARIABLES.isdisjoint(setting_variables())


def test_every_keepwarm_variable_is_a_setting() -> None:
    """Each ``KEEPWARM_*`` name in the file, key or reference, is a real setting."""
    used = set(_KEEPWARM_NAME.findall(compose_text()))
    assert used, "no KEEPWARM_* variable found"
    unknown = used - setting_variables() - COMPOSE_ONLY_VARIABLES
    assert not unknown, f"not settings: {sorted(unknown)}"


def test_app_environment_only_sets_real_settings() -> None:
    """Each variable handed to the app, provider credentials included, is a setting."""
    shared = environment({"environment": compose()["x-keepwarm-env"]})
    unknown = set(shared) - setting_variables()
    assert not unknown, f"not settings: {sorted(unknown)}"


def test_dockerfile_copies_every_package() -> None:
    """The image contains every package the ``keepwarm`` distribution installs."""
    sources = dockerfile_copy_sources()
    for required in ("pyproject.toml", "README.md", *PACKAGES):
        assert required in sources, f"Dockerfile does not COPY {required}"


def test_dockerfile_runs_as_non_root() -> None:
    """The image's final user is not root."""
    users = [
        line.split()[1]
        for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()
        if line.upper().startswith("USER ")
    ]
    assert users, "Dockerfile never switches user"
    assert users[-1].partition(":")[0] not in {"root", "0"}
