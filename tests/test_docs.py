"""The docs site's generated CLI reference is what the command itself prints."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def hook() -> ModuleType:
    path = ROOT / "docs" / "hooks" / "cli_reference.py"
    spec = importlib.util.spec_from_file_location("cli_reference_hook", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # runs the command line in a subprocess
def test_the_cli_reference_matches_help() -> None:
    reference_hook = hook()
    page = reference_hook.on_page_markdown("before\n<!-- cli-reference -->\nafter", page=None)
    env = {**os.environ, "COLUMNS": reference_hook.WIDTH}
    commands = ["providers", "models", "params", "chat", "check", "demo", "serve"]
    for command in [[], *[[c] for c in commands]]:
        printed = subprocess.run(
            [sys.executable, "-m", "providerhub", *command, "--help"],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
        ).stdout
        # `python -m providerhub` names itself as argparse was told: "providerhub".
        assert printed.strip() in page, f"'providerhub {' '.join(command)} --help' differs"
        assert f"## `{' '.join(['providerhub', *command])}`" in page
    assert page.startswith("before\n") and page.endswith("\nafter")


def test_every_docs_page_is_in_the_navigation() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = [p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")]
    missing = [page for page in pages if f": {page}" not in nav]
    assert not missing, f"pages missing from mkdocs.yml's nav: {missing}"
