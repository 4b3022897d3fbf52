"""What a response-cache hit costs through the gateway (issue 19, point 2): ``wrk`` sends
the same chat completion again and again to ``providerhub serve``, so that every answer
after the first is a hit, and the figures are set beside the same requests through a
gateway without a cache (each answered by the bench upstream) and with a cache that each
request skips (``Cache-Control: no-store``: a lookup that misses, and the answer not kept,
what a miss adds).

Targets, each one ``providerhub serve`` worker on 127.0.0.1 over the fast bench upstream
(``server.py``): ``off`` (no cache), ``miss`` (cache on, every request a miss), ``memory``
(hits in the worker's memory) and ``redis`` (hits in a redis-server of its own, started
on a free port). Each round runs every target in turn (the order rotating) at 1
connection (the latency a client sees) and 32 (the rate), whole answers and 16-piece
streams; the medians over ``--rounds`` rounds are printed as a Markdown table.

    .venv/bin/python bench/cache.py --rounds 3 --duration 5

The exit status is 1 when a measurement failed (a wrong answer, a target that did not
start), not when the 1 ms target is missed.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from gateway import (
    CHAT,
    HERE,
    free_port,
    log,
    run_wrk,
    start_gateway,
    start_upstream,
    stop,
    wrk_script,
)

TARGET_HIT_P50_MS = 1.0
TARGETS = ("off", "miss", "memory", "redis")
KINDS = ("non-stream", "stream")


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, f"redis://127.0.0.1:{port}/0"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds of each wrk run")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of wrk warm-up")
    parser.add_argument("--connections", default="1,32")
    args = parser.parse_args()
    connections = [int(c) for c in args.connections.split(",")]
    cache_on = {"PROVIDERHUB_RESPONSE_CACHE_ENABLED": "true"}
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        workdir = Path(tmp)
        procs: list[subprocess.Popen[bytes]] = []
        try:
            upstream, fast = start_upstream([str(HERE / "server.py")])
            procs.append(upstream)
            redis_proc, redis_url = start_redis(workdir)
            procs.append(redis_proc)
            bases: dict[str, str] = {}
            envs = {
                "off": {},
                "miss": cache_on,
                "memory": cache_on,
                "redis": {**cache_on, "PROVIDERHUB_REDIS_URL": redis_url},
            }
            for target, env in envs.items():
                proc, base, _ = start_gateway(workdir / target, fast, fast, env)
                procs.append(proc)
                bases[target] = base + CHAT
            scripts = {}
            for kind in KINDS:
                text = wrk_script(kind == "stream")
                scripts[(kind, False)] = workdir / f"{kind}.lua"
                scripts[(kind, False)].write_text(text)
                skip = text.replace(
                    'wrk.method = "POST"',
                    'wrk.method = "POST"\nwrk.headers["Cache-Control"] = "no-store"',
                )
                scripts[(kind, True)] = workdir / f"{kind}-no-store.lua"
                scripts[(kind, True)].write_text(skip)
            for target in TARGETS:
                for kind in KINDS:
                    run_wrk(
                        scripts[(kind, target == "miss")],
                        bases[target],
                        1,
                        args.warmup,
                        target,
                        kind,
                    )
            p50: dict[tuple[str, str, int], list[float]] = {}
            rps: dict[tuple[str, str, int], list[float]] = {}
            for index in range(args.rounds):
                turn = TARGETS[index % 4 :] + TARGETS[: index % 4]
                for kind in KINDS:
                    for count in connections:
                        for target in turn:
                            script = scripts[(kind, target == "miss")]
                            r = run_wrk(script, bases[target], count, args.duration, target, kind)
                            if r.failed:
                                log(
                                    f"{target} {kind} c={count}: wrong answers: {r.first_bad[:200]}"
                                )
                                return 1
                            p50.setdefault((target, kind, count), []).append(r.p50_ms)
                            rps.setdefault((target, kind, count), []).append(r.rps)
        finally:
            for proc in reversed(procs):
                stop(proc)
    print(f"Median of {args.rounds} rounds of {args.duration} s, one worker, wrk -t1:\n")
    print("| answer | connections | " + " | ".join(f"{t} p50 ms, req/s" for t in TARGETS) + " |")
    print("| --- | --- |" + " --- |" * len(TARGETS))
    for kind in KINDS:
        for count in connections:
            cells = [
                f"{statistics.median(p50[(t, kind, count)]):.3f}, "
                f"{statistics.median(rps[(t, kind, count)]):,.0f}"
                for t in TARGETS
            ]
            print(f"| {kind} | {count} | " + " | ".join(cells) + " |")
    best = max(statistics.median(p50[(t, k, 1)]) for t in ("memory", "redis") for k in KINDS)
    met = "met" if best < TARGET_HIT_P50_MS else "MISSED"
    print(
        f"\nA hit at 1 connection: p50 at most {best:.3f} ms "
        f"(target < {TARGET_HIT_P50_MS} ms: {met})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
