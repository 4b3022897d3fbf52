"""The package's public surface: which modules users and plugins may import."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = {"errors", "hookspecs", "legacy", "plugin", "server", "testing", "types"}


def test_every_other_module_is_private() -> None:
    names = {p.stem for p in (ROOT / "providerhub").glob("*.py")} | {
        p.name for p in (ROOT / "providerhub").iterdir() if (p / "__init__.py").exists()
    }
    public = {n for n in names if not n.startswith("_")}
    assert public == PUBLIC


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.split(".")[0] == "providerhub"}


@pytest.mark.parametrize("plugin", sorted(p.name for p in (ROOT / "plugins").iterdir()))
def test_bundled_plugins_import_only_the_plugin_api(plugin: str) -> None:
    code = [p for p in (ROOT / "plugins" / plugin).glob("providerhub_*/**/*.py")]
    tests = [p for p in (ROOT / "plugins" / plugin).glob("tests/**/*.py")]
    assert code, plugin
    for path in code:
        assert _imports(path) <= {"providerhub.plugin"}, path
    for path in tests:
        allowed = {"providerhub", "providerhub.plugin", "providerhub.testing"}
        assert {m for m in _imports(path) if not m.startswith("providerhub.testing")} <= (
            allowed
        ), path


def test_the_plugin_api_exports_what_it_lists() -> None:
    api = importlib.import_module("providerhub.plugin")
    assert all(hasattr(api, name) for name in api.__all__)
    assert {"chat_completion", "credential", "base_url", "hookimpl", "render_params"} <= set(
        api.__all__
    )


def test_the_routing_and_the_state_do_not_import_the_hub() -> None:
    # The hub builds calls and hands them what they need (registry, health, session,
    # policy); nothing below it reaches back up, so the modules import in one direction.
    below = [*(ROOT / "providerhub" / "_routing").glob("*.py")]
    below += [*(ROOT / "providerhub" / "_state").glob("*.py"), ROOT / "providerhub/_registry.py"]
    for path in below:
        imported = {
            node.module
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.ImportFrom) and node.module
        }
        assert not {"_hub", "_client"} & {m.rsplit(".", 1)[-1] for m in imported}, path
