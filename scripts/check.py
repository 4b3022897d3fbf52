"""Run every check the project holds itself to, in order, stopping at the first failure:
lint, formatting, strict typing, the generated synchronous modules (the routing loop, the
HTTP exchange) being current (``scripts/unasync.py --check``), and the test suites of the
core and the plugins.

Run it with the virtual environment's Python, after installing the dev extra (the README's
test command does both).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TYPED = [
    "providerhub",
    *sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("plugins/*/providerhub_*")),
]

# mkdocs-material prints a banner about its successor on every build; the build is what
# matters here.
ENV = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}

STEPS = [
    ("ruff check", ["-m", "ruff", "check", "."]),
    ("ruff format --check", ["-m", "ruff", "format", "--check", "."]),
    ("mypy --strict", ["-m", "mypy", "--strict", *TYPED]),
    ("the generated sync loop is current", ["scripts/unasync.py", "--check"]),
    ("pytest", ["-m", "pytest", "-q"]),
    ("template plugin", ["scripts/check_template.py"]),
    ("mkdocs build --strict", ["-m", "mkdocs", "build", "--strict"]),
]


def main() -> int:
    for label, args in STEPS:
        print(f"== {label}", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, *args], cwd=ROOT, env=ENV)
        print(
            f"== {label}: {'ok' if code == 0 else f'FAILED ({code})'} "
            f"in {time.monotonic() - started:.1f} s",
            flush=True,
        )
        if code != 0:
            return code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
