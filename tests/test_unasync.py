"""The synchronous routing loop and HTTP exchange are generated from the asyncio ones
(scripts/unasync.py), and the test command fails when a generated file is stale."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "unasync.py"
SOURCE = ROOT / "providerhub" / "_routing" / "_async.py"
GENERATED = ROOT / "providerhub" / "_routing" / "_sync.py"

# The script formats what it writes with ruff, a tool of the dev extra (not of the test
# extra that the Python 3.9 run installs).
pytest.importorskip("ruff", reason="scripts/unasync.py formats with ruff (the dev extra)")


def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("unasync", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_generated_sync_loop_is_current() -> None:
    ran = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, cwd=ROOT
    )
    assert ran.returncode == 0, ran.stderr
    assert GENERATED.read_text(encoding="utf-8").startswith("# Generated from")
    exchange = ROOT / "providerhub" / "_http" / "_exchange.py"
    assert exchange.read_text(encoding="utf-8").startswith("# Generated from")


def test_a_stale_generated_file_fails_the_check_and_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    unasync = script()
    stale = tmp_path / "_sync.py"
    edited = GENERATED.read_text(encoding="utf-8").replace("while True:", "while 1:", 1)
    stale.write_text(edited, encoding="utf-8")
    monkeypatch.setattr(unasync, "FILES", [(SOURCE, stale)])

    assert unasync.main(["--check"]) == 1
    assert f"{stale} is stale" in capsys.readouterr().err
    assert stale.read_text(encoding="utf-8") == edited  # --check writes nothing
    assert unasync.main([]) == 0  # without it, the file is written again
    assert stale.read_text(encoding="utf-8") == GENERATED.read_text(encoding="utf-8")


def test_the_rewrites_take_the_asyncio_out() -> None:
    text = script().unasync(
        "async def acollect(p: AsyncIterator[str]) -> AsyncGenerator[str, None]:\n"
        "    async for x in p:\n"
        "        await aclose_pieces(p.__anext__)\n"
    )
    assert text == (
        "def collect(p: Iterator[str]) -> Generator[str, None, None]:\n"
        "    for x in p:\n"
        "        close_pieces(p.__next__)\n"
    )


def test_the_test_command_runs_the_check() -> None:
    # scripts/check.py is what the README's test command, and so CI, runs.
    steps = (ROOT / "scripts" / "check.py").read_text(encoding="utf-8")
    assert '["scripts/unasync.py", "--check"]' in steps
