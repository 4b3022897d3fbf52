"""Keep the copy-me plugin in plugins/_template from rotting: build it as a wheel, install
the wheel, check that ``providerhub providers`` lists it, run its tests, and uninstall it.

It works in a scratch directory (a copy of the template, the wheel, and nothing in the
checkout) and installs into the running Python's environment for the length of the check
only: the wheel is uninstalled at the end, even when a step fails. The tests run against
the installed wheel, not the sources, exactly as a plugin author's would after ``pip
install``. Run it with the virtual environment's Python; scripts/check.py runs it after
the test suite.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "plugins" / "_template"
DISTRIBUTION = "providerhub-template"
PACKAGE = "providerhub_template"
PROVIDER = "template"


class StepFailed(Exception):
    """A step failed; the message says which and why."""


def main() -> int:
    try:
        importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        pass
    else:
        print(
            f"check_template: {DISTRIBUTION} is already installed in this environment; "
            f"uninstall it first ({sys.executable} -m pip uninstall {DISTRIBUTION})",
            file=sys.stderr,
        )
        return 1
    scratch = Path(tempfile.mkdtemp(prefix="providerhub-template-"))
    try:
        source = scratch / "template"
        shutil.copytree(
            TEMPLATE,
            source,
            ignore=shutil.ignore_patterns(
                "__pycache__", ".pytest_cache", "build", "dist", "*.egg-info"
            ),
        )
        wheel = build(source, scratch / "dist")
        installed = False
        try:
            step("install", pip("install", "-q", "--force-reinstall", "--no-deps", str(wheel)))
            installed = True
            check_listed()
            # The tests must import the installed wheel: take the sources out of their way.
            shutil.rmtree(source / PACKAGE)
            step("pytest", [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], source)
        finally:
            if installed:
                step("uninstall", pip("uninstall", "-q", "-y", DISTRIBUTION))
    except StepFailed as exc:
        print(f"check_template: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"check_template: {DISTRIBUTION} builds, installs, is listed and passes its tests")
    return 0


def build(source: Path, out: Path) -> Path:
    """Build a wheel of ``source`` into ``out`` with pip; the environment's own hatchling
    when it has one (no download), else an isolated build environment."""
    args = ["wheel", "-q", "--no-deps", "--wheel-dir", str(out)]
    if importlib.util.find_spec("hatchling") is not None:
        args.append("--no-build-isolation")
    step("build the wheel", pip(*args, str(source)))
    wheels = sorted(out.glob("*.whl"))
    if len(wheels) != 1:
        raise StepFailed(f"expected one wheel in {out}, found {[w.name for w in wheels]}")
    print(f"built {wheels[0].name}")
    return wheels[0]


def check_listed() -> None:
    """``providerhub providers --json`` lists the template's provider, from its
    distribution, with no plugin error."""
    result = subprocess.run(
        [sys.executable, "-m", "providerhub", "providers", "--json"],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )
    if result.returncode != 0:
        raise StepFailed(f"'providerhub providers --json' failed: {result.stderr.strip()}")
    doc = json.loads(result.stdout)
    errors = [e for e in doc["plugin_errors"] if e["distribution"] == DISTRIBUTION]
    if errors:
        raise StepFailed(f"the installed plugin failed to load: {errors}")
    found = [
        p for p in doc["providers"] if p["name"] == PROVIDER and p["distribution"] == DISTRIBUTION
    ]
    if not found:
        listed = [(p["name"], p["distribution"]) for p in doc["providers"]]
        raise StepFailed(
            f"'providerhub providers --json' does not list {PROVIDER!r} from {DISTRIBUTION} "
            f"(it lists {listed})"
        )
    print(f"'providerhub providers' lists {PROVIDER!r} from {DISTRIBUTION}")


def pip(*args: str) -> list[str]:
    return [sys.executable, "-m", "pip", *args]


def step(label: str, command: list[str], cwd: Path | None = None) -> None:
    print(f"-- {label}", flush=True)
    code = subprocess.call(command, cwd=cwd, env=clean_env())
    if code != 0:
        raise StepFailed(f"{label} failed (exit {code}): {' '.join(command)}")


def clean_env() -> dict[str, str]:
    """This environment without providerhub's settings, and with pytest plugins autoloaded
    (the template's tests need providerhub's, found through its entry point)."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PROVIDERHUB_") and key != "PYTEST_DISABLE_PLUGIN_AUTOLOAD"
    }


if __name__ == "__main__":
    raise SystemExit(main())
