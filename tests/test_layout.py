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


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(tree: ast.AST) -> set[int]:
    """The ids of the imports under ``if TYPE_CHECKING:``, which never run."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            found.update(id(inner) for stmt in node.body for inner in ast.walk(stmt))
    return found


def _import_graph() -> dict[str, set[str]]:
    """Each module of providerhub and the modules of providerhub it imports, anywhere in
    it (inside functions too), but for type checking only."""
    paths = {_module_name(p): p for p in (ROOT / "providerhub").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = _type_checking_only(tree)
        found: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    source = node.module or ""
                for alias in node.names:
                    submodule = f"{source}.{alias.name}"
                    found.add(submodule if submodule in paths else source)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        graph[name] = {m for m in found if m in paths and m != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph``, as the modules along it, or None."""
    state: dict[str, int] = {}  # 1: on the path being walked, 2: done
    path: list[str] = []

    def walk(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state:
                found = walk(target)
                if found:
                    return found
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            found = walk(module)
            if found:
                return found
    return None


def test_the_package_has_no_import_cycle() -> None:
    # Imports inside functions count: they only put a cycle off until the call.
    graph = _import_graph()
    assert "providerhub._transports.abortable" in graph["providerhub._transports.sync"]
    assert _cycle(graph) is None
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_tests_reach_private_modules_only_through_one_module() -> None:
    # When a private module moves, tests/_internals.py changes and no test does.
    for path in sorted((ROOT / "tests").glob("*.py")):
        if path.name == "_internals.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                parts = name.split(".")
                private = parts[0] == "providerhub" and any(p.startswith("_") for p in parts[1:])
                assert not private, f"{path.name} imports {name}: go through tests/_internals.py"
