"""The project's own promises about itself: the README's commands are the ones CI runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```sh\n(python3 -m venv .*)\n```", text)


def test_the_readme_opens_with_the_two_commands() -> None:
    install_and_demo, test = readme_commands()
    assert install_and_demo.endswith("providerhub demo")
    assert "[dev]" in test


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci_lines


def test_every_plugin_is_installed_by_the_test_command() -> None:
    test = readme_commands()[1]
    for plugin in sorted((ROOT / "plugins").glob("*/pyproject.toml")):
        if plugin.parent.name.startswith("_"):
            continue
        assert f"./plugins/{plugin.parent.name}" in test
