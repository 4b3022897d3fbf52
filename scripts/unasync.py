"""Write the synchronous modules from their asyncio sources, or check that they are current.

``providerhub/_routing/_async.py`` is the one source of the routing loop, and
``providerhub/_http/_aexchange.py`` of the HTTP exchange (:data:`FILES`);
``providerhub/_routing/_sync.py`` and ``providerhub/_http/_exchange.py`` are made from them
here, as httpcore makes its sync tree: the ``async`` of ``async def``, ``async for`` and
``async with`` goes, so does ``await``, and each asyncio name in :data:`NAMES` becomes its
synchronous twin, as a whole word (in code, strings and docstrings alike). The result is
formatted with ``ruff format``, so that it passes the project's format check as it stands.

    .venv/bin/python scripts/unasync.py           # write the generated file(s)
    .venv/bin/python scripts/unasync.py --check   # exit 1, naming each stale file

``scripts/check.py`` runs ``--check`` (so the README's test command and CI do), and so does
``tests/test_unasync.py``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FILES = [
    (ROOT / "providerhub/_routing/_async.py", ROOT / "providerhub/_routing/_sync.py"),
    (ROOT / "providerhub/_http/_aexchange.py", ROOT / "providerhub/_http/_exchange.py"),
]
"""Each asyncio source, and the synchronous module generated from it."""

NAMES = {
    # Python's own
    "AsyncIterator": "Iterator",
    "StopAsyncIteration": "StopIteration",
    "__anext__": "__next__",
    "aclose": "close",
    # The state's and the provider's twin methods (one waits for a shared store or the
    # network on an event loop, the other blocks)
    "aacquire": "acquire",
    "atake": "take",
    "acomplete": "complete",
    # providerhub._routing._aio and _io: the steps that wait differently
    "_aio": "_io",
    "aask": "ask",
    "ACLOSED": "CLOSED",
    "aclose_pieces": "close_pieces",
    "asession": "session",
    "asleep": "sleep",
    "awatched": "watched",
    # The transports: aiohttp's (or the lean client's) and requests'
    "aio": "sync",
    "AsyncTransport": "RequestsTransport",
    "aexchange": "exchange",
    # The loop's own functions
    "aclaim": "claim",
    "acollect": "collect",
    "astart": "start",
    "astream": "stream",
    "_aattempts": "_attempts",
    "_acounted": "_counted",
    "_astarted": "_started",
}
"""Each asyncio name, and its synchronous twin."""

HEADER = (
    "# Generated from {source} by scripts/unasync.py: do not edit it.\n"
    "# Edit the source and run the script; scripts/unasync.py --check says if this is current.\n"
)

_NAME = re.compile(r"\b(" + "|".join(sorted(map(re.escape, NAMES), key=len, reverse=True)) + r")\b")
_GENERATOR = re.compile(r"\bAsyncGenerator\[([^\[\]]*)\]")  # Generator takes a third type
_KEYWORD = re.compile(r"\basync (def|for|with)\b")
_AWAIT = re.compile(r"\bawait ")


def unasync(text: str) -> str:
    """The synchronous twin of the asyncio module ``text``, before formatting."""
    text = _GENERATOR.sub(r"Generator[\1, None]", text)
    text = text.replace("AsyncGenerator", "Generator")
    text = _KEYWORD.sub(r"\1", text)
    text = _AWAIT.sub("", text)
    return _NAME.sub(lambda m: NAMES[m.group(1)], text)


def generated(source: Path, target: Path) -> str:
    """The whole text ``target`` should have: the header, and ``source`` made synchronous
    and formatted."""
    text = HEADER.format(source=_shown(source)) + unasync(source.read_text(encoding="utf-8"))
    # The renamed imports are sorted again, and lines that lost their "await" may now fit;
    # under the source's name, so that ruff reads the project's settings.
    beside = source.with_name(target.name)
    text = _ruff(["check", "--fix", "--quiet", "--select", "I", "--exit-zero"], beside, text)
    return _ruff(["format"], beside, text)


def _ruff(args: list[str], target: Path, text: str) -> str:
    """``text`` through ``ruff``, as if it were the file ``target``."""
    ran = subprocess.run(
        [sys.executable, "-m", "ruff", *args, "--stdin-filename", str(target), "-"],
        input=text,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if ran.returncode != 0:
        raise SystemExit(f"ruff {args[0]} failed on the generated {target.name}:\n{ran.stderr}")
    return ran.stdout


def _shown(path: Path) -> str:
    """``path`` as the project names it: relative to the root when it is inside."""
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if a generated file differs from what its source gives",
    )
    args = parser.parse_args(argv)
    stale = []
    for source, target in FILES:
        text = generated(source, target)
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if text == current:
            continue
        name = _shown(target)
        if args.check:
            stale.append(name)
            print(
                f"{name} is stale: it differs from what {_shown(source)} gives; "
                "run scripts/unasync.py",
                file=sys.stderr,
            )
        else:
            target.write_text(text, encoding="utf-8")
            print(f"wrote {name}")
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
