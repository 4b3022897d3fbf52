"""What choosing a routing strategy costs (issue 19, item 1: at most 50 µs at the 99th
percentile, with no Redis round trip on the call's path), against the ``ordered`` default.

For each strategy, a hub (``Hub(False, routing=...)``) with ``--providers`` providers of
one model (declared HTTP endpoints on a closed port: nothing is sent), and two timings,
each call timed on its own with ``time.perf_counter_ns``:

- ``order``: the strategy alone, putting a fresh list of the candidates in order (what a
  call adds to the ``ordered`` default, whose ``order`` hands the list back);
- ``route``: ``hub.route(model)``, all of choosing: the name checks, the candidates of
  :func:`~providerhub._routing.plan.plan` (the breaker's view of each), and the order.

``usage-aware`` runs with ``rpm`` and ``tpm`` on every provider, over the memory state
and, with ``--redis`` (a ``redis-server`` on loopback, started here), over the Redis
state, after one real admission of each provider so that the mirror holds counts;
``INFO commandstats`` before and after the timed ``order`` calls shows that the strategy
sent Redis no command (``route`` also reads the breaker's view of each provider, which the
Redis state refreshes every 0.25 s: the breaker's, as before, not the strategy's).
``lowest-latency`` runs with a measured average for each provider (no probe is due),
``least-busy`` with none in flight.

    .venv/bin/python bench/strategies.py [--calls 200000] [--providers 3] [--redis]

It prints a Markdown table of p50, p99 and p99.9 in µs, and exits 1 when a p99 of
``order`` or of ``route`` over ``ordered``'s exceeds 50 µs.
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from providerhub import Hub
from providerhub.plugin import HTTPProvider

MODEL = "bench-model"
BUDGET_US = 50.0

STRATEGIES: dict[str, dict[str, Any]] = {
    "ordered": {"strategy": "ordered"},
    "weighted": {"strategy": "weighted", "weights": {"p0": 3, "p1": 1}},
    "least-busy": {"strategy": "least-busy"},
    "lowest-latency": {"strategy": "lowest-latency"},
    "usage-aware": {"strategy": "usage-aware"},
}


def _hub(name: str, providers: int, state: str | None, limits: bool) -> Hub:
    hub = Hub(False, routing={"models": {MODEL: STRATEGIES[name]}}, state=state)
    for i in range(providers):
        extra = {"rpm": 10**6, "tpm": 10**9} if limits else {}
        hub.register(HTTPProvider(name=f"p{i}", url="http://127.0.0.1:9", models=[MODEL], **extra))
    strategy = hub.routing.strategy(MODEL)
    if name == "lowest-latency":
        for i in range(providers):
            strategy.answered(f"p{i}", 0.01 * (i + 1))
    if limits:
        for p in hub.providers.values():
            hub.state.limiter.take(p.limit_key, p.limits)  # the mirror holds counts
    return hub


def _percentiles(samples: list[int]) -> tuple[float, float, float]:
    samples.sort()
    n = len(samples)
    return tuple(samples[min(n - 1, int(n * q))] / 1000 for q in (0.5, 0.99, 0.999))  # type: ignore[return-value]


def _time(fn: Any, calls: int) -> tuple[float, float, float]:
    for _ in range(min(calls, 2000)):  # warm up: caches, the strategy's first objects
        fn()
    samples = [0] * calls
    clock = time.perf_counter_ns
    gc.disable()
    try:
        for i in range(calls):
            start = clock()
            fn()
            samples[i] = clock() - start
    finally:
        gc.enable()
    return _percentiles(samples)


def _redis() -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = tempfile.mkdtemp(prefix="bench-strategies-")
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            folder,
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    import redis

    client = redis.Redis.from_url(url)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.02)
    return process, url


@functools.cache
def _client(url: str) -> Any:
    """One client for every count, so that no new connection's HELLO is counted."""
    import redis

    return redis.Redis.from_url(url)


def _commands(url: str) -> dict[str, int]:
    stats = _client(url).info("commandstats")
    return {k: v["calls"] for k, v in stats.items() if k != "cmdstat_info"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--providers", type=int, default=3)
    parser.add_argument("--redis", action="store_true", help="usage-aware over Redis too")
    args = parser.parse_args()

    rows: list[tuple[str, str, tuple[float, float, float], tuple[float, float, float]]] = []
    runs: list[tuple[str, str, str | None, bool]] = [
        (name, "memory", None, name == "usage-aware") for name in STRATEGIES
    ]
    redis_process = None
    url = None
    if args.redis:
        redis_process, url = _redis()
        runs.append(("usage-aware", "redis", url, True))
    failed = False
    try:
        for name, where, state, limits in runs:
            hub = _hub(name, args.providers, state, limits)
            strategy = hub.routing.strategy(MODEL)
            candidates = hub.route(MODEL, provider=[p for p in hub.providers])
            limiter = hub.state.limiter
            before = _commands(url) if url and state else {}
            order = _time(
                lambda s=strategy, c=candidates, lim=limiter: s.order(list(c), lim), args.calls
            )
            if url and state:
                after = _commands(url)
                sent = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
                print(f"redis commands during {name}'s order timings: {sent or 'none'}")
            route = _time(lambda h=hub: h.route(MODEL), args.calls)
            hub.close()
            rows.append((name, where, order, route))
    finally:
        if redis_process is not None:
            redis_process.terminate()
            redis_process.wait()

    base = next(r[3] for r in rows if r[0] == "ordered")
    print(
        f"\n{args.providers} providers, {args.calls:,} calls each; Python "
        f"{sys.version.split()[0]}, {os.cpu_count()} cores\n"
    )
    print(
        "| strategy | state | order p50 | order p99 | order p99.9 | route p50 | route p99 "
        "| route p99 over ordered |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, where, order, route in rows:
        over = route[1] - base[1]
        print(
            f"| {name} | {where} | {order[0]:.2f} | {order[1]:.2f} | {order[2]:.2f} | "
            f"{route[0]:.2f} | {route[1]:.2f} | {over:+.2f} |"
        )
        if order[1] > BUDGET_US or over > BUDGET_US:
            failed = True
    print("\n(µs; the budget is 50 µs at the 99th percentile)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
