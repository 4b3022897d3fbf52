"""The project's own promises about itself: the README's commands are the ones CI runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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


@pytest.mark.slow  # runs the README's example in a subprocess
def test_the_readme_tools_example_runs_and_prints_what_it_says(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    section = (ROOT / "README.md").read_text().split("## Tools and structured output")[1]
    code = section.split("```python\n")[1].split("```")[0]
    printed = section.split("It prints:\n\n```text\n")[1].split("```")[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVIDERHUB_")}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**env, "PROVIDERHUB_CONFIG": str(tmp_path / "none.toml")},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == printed


def test_the_test_command_pins_every_tool_it_installs() -> None:
    """CI installs from constraints.txt, which names a version for every package of the
    dev and test extras: a release elsewhere cannot change what CI runs."""
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib

    assert "-c constraints.txt" in readme_commands()[1]
    assert '-c constraints.txt -e ".[test]"' in (ROOT / ".ci" / "run").read_text()
    pinned = set()
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        requirement = line.split("#")[0].split(";")[0].strip()
        if requirement:
            name, version = requirement.split("==")
            assert version
            pinned.add(re.sub(r"[-_.]+", "-", name).lower())
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for extra in ("dev", "test"):
        for requirement in extras[extra]:
            name = re.split(r"[\[<>=;!~ ]", requirement, maxsplit=1)[0]
            assert re.sub(r"[-_.]+", "-", name).lower() in pinned, name
