"""The vendored browser files: their manifests, and the one way to change them.

No page loads anything from a CDN, and nothing runs npm at build or run time (UI.md
"Stack"). Each file was fetched once with ``npm pack`` at a pinned version and is committed
with its licence, listed in a manifest (``vendor.json``) with its sha256:
``api/ui/static/vendor/`` holds what the pages use (shipped in the wheel), ``tests/ui/vendor/``
what only the tests use (axe-core). ``tests/ui/test_vendor.py`` checks the files against the
manifests in CI; this module, which needs ``npm`` and the registry, re-fetches them and CI never
runs it::

    make vendor                        # python -m api.ui.vendor: re-fetch, fail on any change
    make vendor UPDATE=1               # python -m api.ui.vendor --update: after a version edit

Each manifest lists packages; each names its exact npm version, its tarball's ``integrity``, its
files (``source`` inside the tarball, ``path`` and ``sha256`` where it lands) and its
``licence`` (one or more of those files). A package's files land in ``<name>-<version>/``
beside the manifest (``@scope/name`` becomes ``scope-name``, as ``npm pack`` names tarballs), so
a file's URL changes with its version and browsers may cache it forever.

To update a package: set its ``version`` in the manifest (and its ``source`` paths, if the
package moved them), run ``make vendor UPDATE=1``, read the manifest's diff, and commit the
manifest and the new folder together. Without ``UPDATE`` nothing is written unless every
tarball and file matches what the manifest records.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
#: What the pages use, served under /app/static/vendor/ and shipped in the wheel.
SHIPPED = Path(__file__).with_name("static") / "vendor" / "vendor.json"
#: What only the tests use (axe-core), in a checkout.
TEST_ONLY = ROOT / "tests" / "ui" / "vendor" / "vendor.json"


class VendorMismatch(Exception):
    """What npm served differs from what a manifest records."""


@dataclass(frozen=True, kw_only=True)
class Fetched:
    """One package as npm served it: its tarball's integrity and the chosen files' bytes."""

    integrity: str
    files: dict[str, bytes]  # source path in the tarball -> contents


def directory(package: str, version: str) -> str:
    """A package's folder: ``@picocss/pico``, ``2.1.1`` -> ``picocss-pico-2.1.1``."""
    return f"{package.removeprefix('@').replace('/', '-')}-{version}"


def sha256(data: bytes) -> str:
    """The hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def fetch(package: str, version: str, sources: list[str], workdir: Path) -> Fetched:
    """``npm pack package@version`` into ``workdir`` and read ``sources`` out of the tarball."""
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is needed to fetch vendored files")
    packed = subprocess.run(  # noqa: S603 (fixed argv, no shell)
        [npm, "pack", f"{package}@{version}", "--json", "--pack-destination", str(workdir)],
        check=True,
        capture_output=True,
        text=True,
        cwd=workdir,
    )
    (info,) = json.loads(packed.stdout)
    if info["version"] != version:
        raise VendorMismatch(f"{package}: asked for {version}, npm packed {info['version']}")
    files: dict[str, bytes] = {}
    with tarfile.open(workdir / info["filename"]) as tarball:
        for source in sources:
            member = tarball.extractfile(f"package/{source}")
            if member is None:
                raise VendorMismatch(f"{package}@{version}: {source} is not a file")
            files[source] = member.read()
    return Fetched(integrity=info["integrity"], files=files)


def refresh(manifest_path: Path, *, update: bool) -> list[str]:
    """Fetch every package of one manifest, check or record its hashes, write its files.

    Returns:
        One line per file written.

    Raises:
        VendorMismatch: Without ``update``, a tarball or file differs from the manifest (nothing
            is written then).
    """
    root = manifest_path.parent
    manifest: dict[str, Any] = json.loads(manifest_path.read_text())
    outputs: dict[str, dict[str, bytes]] = {}  # package folder -> file name -> contents
    with tempfile.TemporaryDirectory() as workdir:
        for entry in manifest["packages"]:
            package, version = entry["package"], entry["version"]
            folder = directory(package, version)
            names = [Path(f["source"]).name for f in entry["files"]]
            if len(set(names)) != len(names):
                raise VendorMismatch(f"{package}: two sources share a file name")
            if not entry["licence"] or not {Path(n).name for n in entry["licence"]} <= set(names):
                raise VendorMismatch(f"{package}: its licence must be one of its files")
            got = fetch(package, version, [f["source"] for f in entry["files"]], Path(workdir))
            problems = []
            if entry.get("integrity") != got.integrity:
                problems.append(f"tarball integrity {got.integrity}")
            for file in entry["files"]:
                path = f"{folder}/{Path(file['source']).name}"
                digest = sha256(got.files[file["source"]])
                if (file.get("path"), file.get("sha256")) != (path, digest):
                    problems.append(f"{path} sha256 {digest}")
                file["path"], file["sha256"] = path, digest
            if problems and not update:
                raise VendorMismatch(f"{package}@{version} differs: " + "; ".join(problems))
            entry["integrity"] = got.integrity
            # Recorded as paths beside the manifest; a new version moves them to its folder.
            entry["licence"] = [f"{folder}/{Path(name).name}" for name in entry["licence"]]
            outputs[folder] = {Path(s).name: data for s, data in got.files.items()}

    written = []
    for entry in manifest["packages"]:
        folder = directory(entry["package"], entry["version"])
        stale = re.compile(re.escape(directory(entry["package"], "")) + r"\d")
        for old in root.iterdir():
            if old.is_dir() and (old.name == folder or stale.match(old.name)):
                shutil.rmtree(old)
        (root / folder).mkdir()
        for name, data in outputs[folder].items():
            (root / folder / name).write_bytes(data)
            written.append(f"{folder}/{name}")
    if update:
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return written


def main(argv: list[str] | None = None) -> int:
    """Refresh every manifest (or those named); 1 when one differs from what npm serves."""
    parser = argparse.ArgumentParser(prog="python -m api.ui.vendor", description=__doc__)
    parser.add_argument("manifests", nargs="*", type=Path, default=[SHIPPED, TEST_ONLY])
    parser.add_argument(
        "--update", action="store_true", help="record new hashes after a version change"
    )
    args = parser.parse_args(argv)
    for manifest in args.manifests:
        try:
            for line in refresh(manifest, update=args.update):
                sys.stdout.write(f"{manifest.parent.relative_to(ROOT)}/{line}\n")
        except VendorMismatch as error:
            sys.stderr.write(f"{manifest}: {error}\n")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
