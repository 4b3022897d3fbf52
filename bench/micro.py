"""Microbenchmarks of providerhub's per-call paths that need no network: a ``create``
call up to the provider (checking, planning, the call's objects), and the environment
lookups every call makes. They decide which speed tricks (``providerhub/_speedups.py``)
earn their keep; docs/benchmarks.md has the figures.

::

    .venv/bin/python bench/micro.py            # every group
    .venv/bin/python bench/micro.py prepare    # one group: prepare, getenv

Each case prints the best of ``--repeat`` timings of ``--number`` calls, in microseconds a
call. Compare two versions by running each in turn, twice
(``PYTHONPATH=<other tree> python bench/micro.py``): on a shared machine only a difference
that shows both times counts.
"""

from __future__ import annotations

import argparse
import os
import timeit
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import providerhub
from providerhub import _hub, _settings
from providerhub._routing import router

MESSAGES = [{"role": "user", "content": "Hi"}]


class Echo:
    """An in-process provider serving ``echo-1``."""

    name = "echo"
    url = "http://echo.invalid"
    model: ClassVar[list[str]] = ["echo-1"]
    supports_stream = True
    needs_auth = False
    working = True

    def _create_completion(
        self, model: str, messages: list[Any], stream: bool, **kwargs: Any
    ) -> Iterator[str]:
        yield "ok"


def prepare() -> dict[str, Callable[[], object]]:
    """``create`` up to the provider: what the router is handed is answered at once (the
    router's ``complete`` and ``collect`` are replaced), so only the checks, the plan and
    the call's objects are timed."""
    router.complete = lambda call, candidates: "ok"
    router.collect = lambda call, candidates, sink: "echo"
    hub = providerhub.Hub(False, retries=0)
    hub.register(Echo())
    _hub._default_hub = hub
    completions = providerhub.Client(hub).chat.completions
    return {
        "prepare.hub": lambda: hub.create("echo-1", MESSAGES),
        "prepare.module": lambda: providerhub.create("echo-1", MESSAGES),
        "prepare.client": lambda: completions.create(model="echo-1", messages=MESSAGES),
        "prepare.route": lambda: hub.route("echo-1"),
    }


def getenv() -> dict[str, Callable[[], object]]:
    """The environment lookups of every call: a provider's credential and url."""
    os.environ["PROVIDERHUB_ECHO_API_KEY"] = "k"
    os.environ.pop("PROVIDERHUB_UNSET_API_KEY", None)
    return {
        "getenv.api_key-unset": lambda: _settings.api_key("unset"),
        "getenv.api_key-set": lambda: _settings.api_key("echo"),
        "getenv.url": lambda: _settings.url("echo", "http://echo.invalid"),
        "getenv.env_prefix": lambda: _settings.env_prefix("echo"),
        "getenv.os.environ.get-unset": lambda: os.environ.get("PROVIDERHUB_UNSET_API_KEY"),
        "getenv.os.environ.get-set": lambda: os.environ.get("PROVIDERHUB_ECHO_API_KEY"),
    }


GROUPS = {"prepare": prepare, "getenv": getenv}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("groups", nargs="*", choices=[[], *GROUPS], help="the groups to run")
    parser.add_argument("--number", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    for group in args.groups or GROUPS:
        for name, case in GROUPS[group]().items():
            best = min(timeit.repeat(case, number=args.number, repeat=args.repeat))
            print(f"{name:30} {best / args.number * 1e6:8.3f} us", flush=True)


if __name__ == "__main__":
    main()
