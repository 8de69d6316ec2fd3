"""The vendored browser files are exactly what their manifests record, each with its licence,
and no page loads a script or stylesheet from another host (UI.md "Stack": no CDN)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from api.ui.vendor import SHIPPED, TEST_ONLY, directory, sha256

MANIFESTS = pytest.mark.parametrize("manifest", [SHIPPED, TEST_ONLY], ids=["shipped", "test-only"])
UI = SHIPPED.parents[2]
#: A script or stylesheet from another host: ``<script src="https://...">``, ``<link
#: href="//...">``, ``@import url(https://...)``.
_REMOTE = re.compile(
    r"""(<(script|link)\b[^>]*\b(src|href)|@import|\burl\()\s*=?\s*\(?\s*["']?\s*(https?:)?//""",
    re.IGNORECASE,
)


def _packages(manifest: Path) -> list[dict[str, Any]]:
    packages: list[dict[str, Any]] = json.loads(manifest.read_text())["packages"]
    return packages


def wrong_hashes(manifest: Path) -> list[str]:
    """Listed files that are missing or whose sha256 is not the manifest's."""
    return [
        file["path"]
        for package in _packages(manifest)
        for file in package["files"]
        if not (manifest.parent / file["path"]).is_file()
        or sha256((manifest.parent / file["path"]).read_bytes()) != file["sha256"]
    ]


def unlisted_files(manifest: Path) -> list[str]:
    """Files beside the manifest that it does not list."""
    listed = {file["path"] for package in _packages(manifest) for file in package["files"]}
    on_disk = {
        path.relative_to(manifest.parent).as_posix()
        for path in manifest.parent.rglob("*")
        if path.is_file() and path != manifest
    }
    return sorted(on_disk - listed)


def without_licence(manifest: Path) -> list[str]:
    """Packages with no licence file, or one that is not among their checked files."""
    return [
        package["package"]
        for package in _packages(manifest)
        if not package["licence"]
        or not set(package["licence"]) <= {file["path"] for file in package["files"]}
    ]


def unversioned(manifest: Path) -> list[str]:
    """Files outside their package's ``<name>-<exact version>/`` folder (which is what lets
    browsers cache them forever), or packages pinned to a range."""
    return [
        file["path"]
        for package in _packages(manifest)
        for file in package["files"]
        if not re.fullmatch(r"\d+\.\d+\.\d+", package["version"])
        or Path(file["path"]).parent.as_posix() != directory(package["package"], package["version"])
    ]


def remote_loads(root: Path) -> list[str]:
    """Scripts and stylesheets a template or our own CSS loads from another host."""
    sources = [
        path
        for path in sorted(root.rglob("*"))
        if path.is_file()
        and "vendor" not in path.relative_to(root).parts
        and path.suffix in {".html", ".css", ".js"}
    ]
    return [
        f"{path.relative_to(root)}: {match.group(0)}"
        for path in sources
        for match in _REMOTE.finditer(path.read_text())
    ]


@MANIFESTS
def test_every_vendored_file_has_the_sha256_its_manifest_records(manifest: Path) -> None:
    assert wrong_hashes(manifest) == []


@MANIFESTS
def test_every_file_under_vendor_is_in_the_manifest(manifest: Path) -> None:
    assert unlisted_files(manifest) == []


@MANIFESTS
def test_every_package_ships_its_licence(manifest: Path) -> None:
    assert without_licence(manifest) == []


@MANIFESTS
def test_every_file_sits_under_its_exact_version(manifest: Path) -> None:
    assert unversioned(manifest) == []


def test_no_page_loads_a_script_or_stylesheet_from_another_host() -> None:
    assert remote_loads(UI) == []


def test_the_check_for_remote_loads_sees_a_cdn(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "page.html").write_text(
        '<script src="/app/static/app.js"></script>\n'
        '<script defer src="https://unpkg.com/htmx.org"></script>\n'
        "<link rel=stylesheet href=//cdn.example/pico.css>\n"
        '<a href="https://example.com">a link is fine</a>\n'
    )
    (tmp_path / "app.css").write_text("@import url('https://fonts.example/x.css');\n")

    assert [line.split(": ")[0] for line in remote_loads(tmp_path)] == [
        "app.css",
        "templates/page.html",
        "templates/page.html",
    ]
