"""Microbenchmarks of providerhub's per-call paths that need no network: a ``create``
call up to the provider (checking, planning, the call's objects), and the environment
lookups every call makes. They decide which speed tricks (``providerhub/_speedups.py``)
earn their keep; docs/benchmarks.md has the figures.

::

    .venv/bin/python bench/micro.py            # every group
    .venv/bin/python bench/micro.py getenv     # one group: prepare, getenv, timeouts

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
    """The environment lookups of every call (a provider's credential and url), through
    ``_speedups`` and the plain way (``os.environ.get``, what it falls back to)."""
    from providerhub import _speedups
    from providerhub._transports.session import ENVIRONMENT

    os.environ["PROVIDERHUB_ECHO_API_KEY"] = "k"
    os.environ.pop("PROVIDERHUB_UNSET_API_KEY", None)
    unset, set_ = "PROVIDERHUB_UNSET_API_KEY", "PROVIDERHUB_ECHO_API_KEY"
    fast = _speedups.getenv
    fast_all = _speedups.environment_reader(ENVIRONMENT)
    return {
        "getenv.speedup-unset": lambda: fast(unset),
        "getenv.plain-unset": lambda: os.environ.get(unset),
        "getenv.speedup-set": lambda: fast(set_),
        "getenv.plain-set": lambda: os.environ.get(set_),
        "getenv.proxy-variables-speedup": fast_all,
        "getenv.proxy-variables-plain": lambda: tuple(os.environ.get(n) for n in ENVIRONMENT),
        "getenv.settings.api_key": lambda: _settings.api_key("unset"),
    }


def timeouts() -> dict[str, Callable[[], object]]:
    """aiohttp's timeout of a request without a total: kept per limits (lru_cache) or
    made each time."""
    from providerhub._timeout import Timeout
    from providerhub._transports import aio

    limits = Timeout(10.0, 60.0)
    return {
        "timeouts.kept": lambda: aio._client_timeout(limits, None),
        "timeouts.made": lambda: aio._new_client_timeout(None, limits.connect, limits.read),
    }


GROUPS = {"prepare": prepare, "getenv": getenv, "timeouts": timeouts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("groups", nargs="*", choices=[[], *GROUPS], help="the groups to run")
    parser.add_argument("--number", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    for group in args.groups or GROUPS:
        for name, case in GROUPS[group]().items():
            best = min(timeit.repeat(case, number=args.number, repeat=args.repeat))
            print(f"{name:34} {best / args.number * 1e6:8.3f} us", flush=True)


if __name__ == "__main__":
    main()
