"""The ``create`` signatures: one typed declaration each (``providerhub._api``), which a
type checker reads for every ``create``, and the parameters ``help()`` shows."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import providerhub
from providerhub import AsyncClient, Client, Hub

ROOT = Path(__file__).resolve().parent.parent

ROUTING = (
    "stream: 'bool' = False, provider: 'ProviderChoice' = None, auth: 'Auth' = None, "
    "timeout: 'TimeoutLike' = None, retries: 'int | Retry | None' = None"
)
POSITIONAL = f"model: 'str', messages: 'Sequence[Mapping[str, Any]]', *, {ROUTING}, **kwargs: 'Any'"
KEYWORDS = f"*, model: 'str', messages: 'Sequence[Mapping[str, Any]]', {ROUTING}, **params: 'Any'"


def test_the_package_init_only_re_exports() -> None:
    tree = ast.parse((ROOT / "providerhub" / "__init__.py").read_text(encoding="utf-8"))
    defined = [
        node.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    ]
    assert defined == []


def test_help_shows_every_create_with_its_parameters() -> None:
    hub = Hub(False)
    shown = {
        "create": (providerhub.create, f"({POSITIONAL}) -> 'str | Stream'"),
        "acreate": (
            providerhub.acreate,
            f"({POSITIONAL}) -> 'Coroutine[Any, Any, str] | AsyncStream'",
        ),
        "Hub.create": (Hub.create, f"(self, {POSITIONAL}) -> 'str | router.Stream'"),
        "Hub.acreate": (
            hub.acreate,
            f"({POSITIONAL}) -> 'Coroutine[Any, Any, str] | AsyncStream'",
        ),
        "Completions.create": (
            Client(hub).chat.completions.create,
            f"({KEYWORDS}) -> 'ChatCompletion | ChunkStream'",
        ),
        "AsyncCompletions.create": (
            AsyncClient(hub).chat.completions.create,
            f"({KEYWORDS}) -> 'ChatCompletion | AsyncChunkStream'",
        ),
    }
    for qualname, (function, signature) in shown.items():
        assert function.__qualname__ == qualname
        assert str(inspect.signature(function)) == signature, qualname
    assert providerhub.create.__module__ == providerhub.acreate.__module__ == "providerhub"
    assert inspect.iscoroutinefunction(AsyncClient(hub).chat.completions.create)
    assert not inspect.iscoroutinefunction(hub.acreate)  # it returns a coroutine or a stream


def test_the_clients_take_model_and_messages_by_keyword_only() -> None:
    completions: Any = Client(Hub(False)).chat.completions
    with pytest.raises(TypeError, match="positional"):
        completions.create("gpt-x", [{"role": "user", "content": "Hi"}])


SNIPPET = """
from collections.abc import Coroutine
from typing import Any

from typing_extensions import assert_type

import providerhub
from providerhub import AsyncClient, AsyncStream, Client, Hub, Stream
from providerhub._client import AsyncChunkStream, ChunkStream
from providerhub.types import ChatCompletion

m = [{"role": "user", "content": "Hi"}]
flag = bool(m)
hub = Hub(False)
assert_type(providerhub.create("x", m), str)
assert_type(providerhub.create("x", m, stream=False, temperature=0.5), str)
assert_type(providerhub.create("x", m, stream=True), Stream)
assert_type(providerhub.create(model="x", messages=m, stream=flag), str | Stream)
assert_type(providerhub.acreate("x", m, provider="a"), Coroutine[Any, Any, str])
assert_type(providerhub.acreate("x", m, stream=True), AsyncStream)
assert_type(providerhub.acreate("x", m, stream=flag), Coroutine[Any, Any, str] | AsyncStream)
assert_type(hub.create("x", m, provider="a", auth="k", timeout=3, retries=1), str)
assert_type(hub.create("x", m, stream=True), Stream)
assert_type(hub.create("x", m, stream=flag), str | Stream)
assert_type(hub.acreate("x", m), Coroutine[Any, Any, str])
assert_type(hub.acreate("x", m, stream=True), AsyncStream)
assert_type(hub.acreate("x", m, stream=flag), Coroutine[Any, Any, str] | AsyncStream)
completions = Client(hub).chat.completions
assert_type(completions.create(model="x", messages=m), ChatCompletion)
assert_type(completions.create(model="x", messages=m, stream=True), ChunkStream)
assert_type(completions.create(model="x", messages=m, stream=flag), ChatCompletion | ChunkStream)
acompletions = AsyncClient(hub).chat.completions


async def awaited() -> None:
    assert_type(await acompletions.create(model="x", messages=m), ChatCompletion)
    assert_type(
        await acompletions.create(model="x", messages=m, stream=True), AsyncChunkStream
    )
    assert_type(
        await acompletions.create(model="x", messages=m, stream=flag),
        ChatCompletion | AsyncChunkStream,
    )


completions.create("x", m)  # refused: 1
providerhub.create("x", m, stream="yes")  # refused: 2
hub.acreate("x", m, timeout=object())  # refused: 3
"""


@pytest.mark.slow
def test_a_type_checker_infers_what_each_create_returns(tmp_path: Path) -> None:
    # The Python 3.9 run of .ci/run installs the test tools only, not mypy.
    pytest.importorskip("mypy")
    snippet = tmp_path / "snippet.py"
    snippet.write_text(SNIPPET.lstrip("\n"), encoding="utf-8")
    found = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--disable-error-code",
            "unused-coroutine",
            "--python-version",
            "3.10",
            "--config-file",
            "",
            "--cache-dir",
            str(tmp_path / "cache"),
            str(snippet),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    lines = SNIPPET.lstrip("\n").splitlines()
    refused = {i + 1 for i, line in enumerate(lines) if "# refused" in line}
    assert found.returncode in (0, 1), found.stdout + found.stderr  # 2: mypy did not run
    errors = [line for line in found.stdout.splitlines() if ": error:" in line]
    assert {int(line.split(":")[1]) for line in errors} == refused, found.stdout
