"""What the benchmark ran on: CPU, cores, Python, library versions and the commit."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LIBRARIES = (
    "providerhub",
    "providerhub-gravityengine",
    "requests",
    "urllib3",
    "pluggy",
    "orjson",
    "openai",
    "httpx",
    "litellm",
)


def cpu_model() -> str:
    """The CPU's model name, from ``/proc/cpuinfo`` where there is one."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions(python: str | None = None) -> dict[str, str | None]:
    """Installed versions of the libraries that matter here (None: not installed), in this
    interpreter or in ``python``."""
    if python is None or python == sys.executable:
        found: dict[str, str | None] = {}
        for name in LIBRARIES:
            try:
                found[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                found[name] = None
        return found
    code = (
        "import json\nfrom importlib import metadata\nout = {}\n"
        f"for n in {list(LIBRARIES)!r}:\n"
        "    try: out[n] = metadata.version(n)\n"
        "    except metadata.PackageNotFoundError: out[n] = None\n"
        "print(json.dumps(out))"
    )
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60)
    loaded: dict[str, str | None] = json.loads(done.stdout) if done.returncode == 0 else {}
    return loaded


def distribution_count() -> int:
    """How many distributions this environment has (entry-point discovery scans them)."""
    return sum(1 for _ in metadata.distributions())


def git_commit() -> str:
    """The commit of the work tree, with ``+dirty`` when the core or a plugin has
    uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "providerhub", "plugins"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}+dirty" if dirty else head or "unknown"


def describe() -> dict[str, Any]:
    """Everything above, as one JSON-ready dict."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "commit": git_commit(),
        "distributions_installed": distribution_count(),
        "versions": versions(),
    }
