"""What sharing the state through Redis adds to a call: ``hub.create(...)`` with the state
in memory against the same call with the state in a ``redis-server`` on loopback (issue
11, item 5: under 0.3 ms at the median), how many Redis commands a call costs, and how
many such commands one Redis runs a second.

One run, all on 127.0.0.1:

1. starts the fast upstream (``server.py``) and a ``redis-server`` of its own (nothing
   saved to disk), and makes two hubs, ``state="memory"`` and ``state=<that Redis>``,
   each with three providers on the upstream: ``plain`` (no limits: the breaker's mirror
   alone), ``rpm`` (``rpm`` set: one limiter script per call) and ``rpm+tpm`` (both: the
   limiter script, and one more counting the tokens the answer reported). The limits are
   far above what the run sends, so that every call is let through;
2. times ``--calls`` non-streamed calls per hub and provider, one by one, in alternating
   blocks of ``--block`` (memory then Redis, then Redis then memory, ...), and checks every
   answer's text after its block. The figures are the medians of all the calls, and the
   *added* latency is the Redis median minus the memory median; the paired figure, the
   median over the blocks of (Redis block median - memory block median), is beside it;
3. counts the commands Redis ran for ``--count-calls`` more calls of each provider, from
   ``INFO commandstats`` before and after: the commands the client sent (its round trips)
   and those the scripts ran inside Redis;
4. runs ``redis-benchmark`` against the same Redis with the scripts a call runs
   (``EVALSHA``), at 32 connections, for the capacity of one Redis (``--no-capacity``:
   not);
5. with ``--gateway-rounds N``, runs ``providerhub serve`` (one worker, an endpoint
   without limits) with and without ``PROVIDERHUB_REDIS_URL`` under ``wrk`` at 1
   connection, in N alternating rounds, and counts the Redis commands per request;
6. with ``--load-rounds N``, runs ``providerhub serve`` (one worker, an endpoint with an
   ``rpm`` far above the load: one limiter script per request) with Redis on loopback and
   with Redis ``--delays`` milliseconds away in each direction (a delaying TCP proxy,
   ``tests/_delay.py``, between the gateway and the same ``redis-server``), under ``wrk`` at
   32 connections in N alternating rounds, while a client asks ``/healthz`` every 10 ms:
   what a distant Redis does to the rate-limited throughput and to everything else.

Run it from the dev environment (``redis-server`` and ``redis-benchmark`` from the
system's packages: ``apt-get install redis-server redis-tools``)::

    .venv/bin/python bench/state.py

It prints Markdown tables and writes ``bench/results/state.md`` and ``state.json``; the
exit status is 1 when a measurement failed (a wrong answer, Redis lost on the way).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import protocol
from gateway import (
    CHAT,
    busy_cores,
    free_port,
    run_wrk,
    start_gateway,
    start_upstream,
    stop,
    wrk_script,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TARGET_LOAD_RATIO = 0.7
"""Issue 15: rate-limited calls with Redis 5 ms away keep 70% of the loopback throughput."""
TARGET_HEALTHZ_MS = 5.0
"""Issue 15: ``/healthz`` under that load stays under 5 ms."""
TARGET_ADDED_MS = 0.3
KINDS = ("plain", "rpm", "rpm+tpm")
HIGH = 10**9
"""A limit the run never reaches: every call is counted, none refused."""
CLIENT_COMMANDS = ("evalsha", "eval", "del", "ping", "script", "client", "hello", "select")
"""Commands providerhub's client sends; the others in ``commandstats`` run inside scripts."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class BenchProvider:
    """A provider on the bench upstream, with the limits of its ``kind``."""

    supports_stream = True
    needs_auth = False
    yields_pieces = True  # the answer's usage reaches the router, for tpm
    honors_timeout = True

    def __init__(self, kind: str, base_url: str) -> None:
        self.name = "bench-" + kind.replace("+", "-")
        self.model = [self.name]
        self.url = base_url
        if "rpm" in kind:
            self.rpm = HIGH
        if "tpm" in kind:
            self.tpm = HIGH

    def _create_completion(
        self, model: str, messages: list[Any], stream: bool, **kwargs: Any
    ) -> Iterator[Any]:
        from providerhub.plugin import chat_completion

        yield from chat_completion(
            self.name,
            self.url + protocol.PATH,
            protocol.MODEL,
            messages,
            stream,
            defaults=protocol.DEFAULTS,
            **kwargs,
        )


class RedisProcess:
    """A ``redis-server`` on a free loopback port, saving nothing."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = tempfile.mkdtemp(prefix="bench-redis-")
        self.proc = subprocess.Popen(
            [
                *(binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""),
                *("--appendonly", "no", "--dir", self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        self.client = redis.Redis(port=self.port, socket_timeout=10)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)
        info = self.client.info("server")
        self.version = str(info["redis_version"])

    def commandstats(self) -> dict[str, int]:
        """Calls per command (``INFO commandstats``), lower-case names."""
        stats = self.client.info("commandstats")
        return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}

    def stop(self) -> None:
        self.client.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


def run_block(hub: Any, model: str, tag: str, size: int) -> list[float]:
    """``size`` calls one by one, each timed (seconds); the answers are checked after the
    timed loop."""
    times: list[float] = []
    texts: list[tuple[str, str]] = []
    clock = time.perf_counter
    for i in range(size):
        nonce = f"{tag}-{i}"
        messages = protocol.messages_for(nonce)
        started = clock()
        text = hub.create(model, messages)
        times.append(clock() - started)
        texts.append((nonce, text))
    for nonce, text in texts:
        if text != protocol.reply_text(nonce):
            raise RuntimeError(f"wrong answer through {model} for {nonce}: {text[:80]!r}")
    return times


def measure_latency(
    hubs: dict[str, Any], models: dict[str, str], calls: int, block: int
) -> dict[str, Any]:
    """Medians per (state, kind) over alternating blocks; see the module."""
    samples: dict[tuple[str, str], list[float]] = {(s, k): [] for s in hubs for k in KINDS}
    blocks: dict[tuple[str, str], list[float]] = {key: [] for key in samples}
    for state in hubs:  # warm-up: connections open, scripts loaded, mirrors read
        for kind in KINDS:
            run_block(hubs[state], models[kind], f"warm-{state}-{kind}", 300)
    rounds = max(1, calls // block)
    for r in range(rounds):
        states = ("memory", "redis") if r % 2 == 0 else ("redis", "memory")
        kinds = KINDS if r % 2 == 0 else KINDS[::-1]
        for kind in kinds:
            for state in states:
                times = run_block(hubs[state], models[kind], f"{state}-{kind}-{r}", block)
                samples[(state, kind)].extend(times)
                blocks[(state, kind)].append(statistics.median(times))
    out: dict[str, Any] = {}
    for kind in KINDS:
        memory, redis_ = samples[("memory", kind)], samples[("redis", kind)]
        paired = [
            b - a for a, b in zip(blocks[("memory", kind)], blocks[("redis", kind)], strict=True)
        ]
        out[kind] = {
            "calls": len(memory),
            "memory_p50_ms": statistics.median(memory) * 1000,
            "redis_p50_ms": statistics.median(redis_) * 1000,
            "memory_p99_ms": percentile(memory, 0.99) * 1000,
            "redis_p99_ms": percentile(redis_, 0.99) * 1000,
            "added_p50_ms": (statistics.median(redis_) - statistics.median(memory)) * 1000,
            "added_paired_ms": statistics.median(paired) * 1000,
        }
    return out


def round_trips(redis_proc: RedisProcess, calls: int, block: int) -> dict[str, float]:
    """The median of one redis-py command alone, ``PING`` and the limiter's ``EVALSHA``,
    in alternating blocks: what a call's one round trip costs by itself."""
    import redis

    from providerhub._state.redis.scripts import TAKE

    client = redis.Redis(port=redis_proc.port, socket_timeout=10)
    take = client.script_load(TAKE)
    members = iter(range(10**9))

    def ping() -> object:
        return client.ping()

    def evalsha() -> object:
        return client.evalsha(
            take, 2, "rt:{p:x}:rpm", "rt:{p:x}:tpm", HIGH, -1, 60000, next(members)
        )

    samples: dict[str, list[float]] = {"PING": [], "EVALSHA (limiter)": []}
    clock = time.perf_counter
    try:
        for r in range(max(1, calls // block)):
            for name, command in (("PING", ping), ("EVALSHA (limiter)", evalsha))[
                :: 1 - 2 * (r % 2)
            ]:
                for _ in range(block):
                    started = clock()
                    command()
                    samples[name].append(clock() - started)
    finally:
        client.close()
    return {name: statistics.median(values) * 1000 for name, values in samples.items()}


def measure_gateway(
    redis_proc: RedisProcess, fast: int, rounds: int, seconds: float
) -> dict[str, Any]:
    """``providerhub serve`` (one worker, an openai-compatible endpoint without limits) with
    and without ``PROVIDERHUB_REDIS_URL``, under ``wrk`` at 1 connection, in alternating
    rounds: the medians of the rounds' p50s and request rates."""
    if shutil.which("wrk") is None:
        return {"skipped": "wrk is not installed (apt-get install wrk)"}
    with tempfile.TemporaryDirectory(prefix="bench-state-") as tmp:
        workdir = Path(tmp)
        script = workdir / "non-stream.lua"
        script.write_text(wrk_script(False))
        gateways: dict[str, str] = {}
        procs = []
        try:
            for state, env in (
                ("memory", {}),
                ("redis", {"PROVIDERHUB_REDIS_URL": redis_proc.url}),
            ):
                (workdir / state).mkdir()
                proc, base, _ = start_gateway(workdir / state, fast, fast, env)
                procs.append(proc)
                gateways[state] = base
            for base in gateways.values():
                run_wrk(script, base + CHAT, 1, 2, "warm-up", "non-stream")
            p50: dict[str, list[float]] = {state: [] for state in gateways}
            rps: dict[str, list[float]] = {state: [] for state in gateways}
            counted: dict[str, int] = {}
            requests = 0
            for r in range(rounds):
                for state in ("memory", "redis") if r % 2 == 0 else ("redis", "memory"):
                    before = redis_proc.commandstats() if state == "redis" else {}
                    result = run_wrk(script, gateways[state] + CHAT, 1, seconds, state, "n")
                    if state == "redis":
                        requests += result.requests
                        for name, n in redis_proc.commandstats().items():
                            if name != "info" and n != before.get(name, 0):
                                counted[name] = counted.get(name, 0) + n - before.get(name, 0)
                    if result.failed or not result.ok:
                        raise RuntimeError(f"wrong answers from the {state} gateway")
                    p50[state].append(result.p50_ms)
                    rps[state].append(result.rps)
        finally:
            for proc in procs:
                stop(proc)
    return {
        "rounds": rounds,
        "seconds": seconds,
        "redis_commands_per_request": {k: v / max(requests, 1) for k, v in sorted(counted.items())},
        **{f"{s}_p50_ms": statistics.median(v) for s, v in p50.items()},
        **{f"{s}_rps": statistics.median(v) for s, v in rps.items()},
    }


class DelayedRedis:
    """The delaying proxy of ``tests/_delay.py`` in a process of its own, ``delay``
    seconds each way in front of the ``redis-server`` on ``port``."""

    def __init__(self, port: int, delay: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests._delay", "--to", str(port), "--delay", str(delay)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().strip()
        if not line.isdigit():
            self.stop()
            raise RuntimeError(f"the delaying proxy did not start: {line!r}")
        self.url = f"redis://127.0.0.1:{line}/0"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class HealthSampler:
    """Asks ``/healthz`` every ``interval`` seconds on one kept-alive connection, from a
    thread, and keeps each answer's latency (seconds); and sends ``PING`` to ``redis_url``
    as often, for the round trip the gateway meets (the proxy's delay, and its wake-ups on
    a busy machine)."""

    def __init__(self, port: int, redis_url: str, interval: float = 0.01) -> None:
        self.port = port
        self.redis_url = redis_url
        self.interval = interval
        self.samples: list[float] = []
        self.pings: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> HealthSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(15)

    def _run(self) -> None:
        import redis

        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        pinger = redis.Redis.from_url(self.redis_url, socket_timeout=10)
        pinger.ping()
        clock = time.perf_counter
        while not self._stop.wait(self.interval):
            started = clock()
            pinger.ping()
            self.pings.append(clock() - started)
            started = clock()
            try:
                conn.request("GET", "/healthz")
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except OSError:
                conn.close()
                ok = False
            if ok:
                self.samples.append(clock() - started)
            else:
                self.failures += 1
        conn.close()
        pinger.close()


def measure_load(
    redis_proc: RedisProcess,
    fast: int,
    delays_ms: list[float],
    rounds: int,
    seconds: float,
    connections: int = 32,
) -> dict[str, Any]:
    """``providerhub serve`` (one worker, an endpoint with an ``rpm`` it never reaches) with
    Redis on loopback and ``delays_ms`` away, under ``wrk`` at 32 connections in alternating
    rounds, ``/healthz`` sampled all along: medians of the rounds' figures."""
    if shutil.which("wrk") is None:
        return {"skipped": "wrk is not installed (apt-get install wrk)"}
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        workdir = Path(tmp)
        script = workdir / "non-stream.lua"
        script.write_text(wrk_script(False))
        proxies: list[DelayedRedis] = []
        procs = []
        gateways: dict[float, tuple[str, int]] = {}
        gateway_pids: dict[float, int] = {}
        urls: dict[float, str] = {}
        proxy_pids: dict[float, int] = {}
        try:
            for delay in [0.0, *delays_ms]:
                url = redis_proc.url
                if delay:
                    proxies.append(DelayedRedis(redis_proc.port, delay / 1000))
                    url = proxies[-1].url
                    proxy_pids[delay] = proxies[-1].proc.pid
                (workdir / str(delay)).mkdir()
                proc, base, _ = start_gateway(
                    workdir / str(delay),
                    fast,
                    fast,
                    {"PROVIDERHUB_REDIS_URL": url},
                    limits=f"rpm = {HIGH}\n",
                )
                procs.append(proc)
                gateways[delay] = (base, int(base.rsplit(":", 1)[1]))
                gateway_pids[delay] = proc.pid
                urls[delay] = url
            for base, _ in gateways.values():
                run_wrk(script, base + CHAT, 8, 2, "warm-up", "non-stream")
            figures: dict[float, dict[str, list[float]]] = {d: {} for d in gateways}
            for r in range(rounds):
                order = list(gateways) if r % 2 == 0 else list(gateways)[::-1]
                for delay in order:
                    base, port = gateways[delay]
                    before = redis_proc.commandstats()
                    cpu = cpu_seconds(gateway_pids[delay]), cpu_seconds(proxy_pids.get(delay))
                    machine = machine_ticks()
                    with HealthSampler(port, urls[delay]) as health:
                        result = run_wrk(script, base + CHAT, connections, seconds, "load", "n")
                    machine_after = machine_ticks()
                    busy = (os.cpu_count() or 1) * (machine_after[0] - machine[0])
                    busy /= max(machine_after[1] - machine[1], 1)
                    gateway_cpu = cpu_seconds(gateway_pids[delay]) - cpu[0]
                    proxy_cpu = cpu_seconds(proxy_pids.get(delay)) - cpu[1]
                    after = redis_proc.commandstats()
                    if result.failed or not result.ok:
                        raise RuntimeError(
                            f"wrong answers with Redis {delay:g} ms away: {result.first_bad}"
                        )
                    if not health.samples or health.failures:
                        raise RuntimeError(f"/healthz failed {health.failures} times")
                    sent = sum(
                        after.get(name, 0) - before.get(name, 0)
                        for name in after
                        # Not the sampler's PINGs: the gateway sends none here.
                        if name.split("|")[0] in CLIENT_COMMANDS and name != "ping"
                    )
                    row = figures[delay]
                    for name, value in (
                        ("rps", result.rps),
                        ("p50_ms", result.p50_ms),
                        ("p99_ms", result.p99_ms),
                        ("healthz_p50_ms", statistics.median(health.samples) * 1000),
                        ("healthz_p99_ms", percentile(health.samples, 0.99) * 1000),
                        ("healthz_max_ms", max(health.samples) * 1000),
                        ("ping_p50_ms", statistics.median(health.pings) * 1000),
                        ("commands_per_request", sent / max(result.requests, 1)),
                        ("gateway_cpu_us", gateway_cpu / max(result.requests, 1) * 1e6),
                        ("proxy_cpu_share", proxy_cpu / result.seconds if result.seconds else 0),
                        (
                            "gateway_cpu_share",
                            gateway_cpu / result.seconds if result.seconds else 0,
                        ),
                        ("machine_busy_cores", busy),
                    ):
                        row.setdefault(name, []).append(value)
        finally:
            for proc in procs:
                stop(proc)
            for proxy in proxies:
                proxy.stop()
    return {
        "rounds": rounds,
        "seconds": seconds,
        "connections": connections,
        "rows": [
            {"delay_ms": delay, **{k: statistics.median(v) for k, v in row.items()}}
            for delay, row in figures.items()
        ],
    }


def machine_ticks() -> tuple[int, int]:
    """The machine's busy and total CPU ticks so far (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


def cpu_seconds(pid: int | None) -> float:
    """The CPU time (user and system) of process ``pid`` and its children so far (0 for
    None): ``providerhub serve`` runs its worker as a child."""
    if pid is None:
        return 0.0
    total = 0
    for current in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found = []
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            kids = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        found += [int(k) for k in kids]
        todo += [int(k) for k in kids]
    return found


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def count_commands(
    redis_proc: RedisProcess, hub: Any, models: dict[str, str], calls: int
) -> dict[str, Any]:
    """Commands per call, for each kind, from ``INFO commandstats`` around ``calls`` calls
    (the ``INFO`` itself left out)."""
    out: dict[str, Any] = {}
    for kind in KINDS:
        run_block(hub, models[kind], f"count-warm-{kind}", 200)
        before = redis_proc.commandstats()
        started = time.perf_counter()
        run_block(hub, models[kind], f"count-{kind}", calls)
        seconds = time.perf_counter() - started
        after = redis_proc.commandstats()
        delta = {
            name: after.get(name, 0) - before.get(name, 0)
            for name in after
            if name != "info" and after.get(name, 0) != before.get(name, 0)
        }
        sent = sum(n for name, n in delta.items() if name.split("|")[0] in CLIENT_COMMANDS)
        inside = sum(n for name, n in delta.items() if name.split("|")[0] not in CLIENT_COMMANDS)
        out[kind] = {
            "calls": calls,
            "calls_per_second": calls / seconds,
            "sent_per_call": sent / calls,
            "inside_per_call": inside / calls,
            "by_command": {name: n / calls for name, n in sorted(delta.items())},
        }
    return out


def capacity(redis_proc: RedisProcess, requests: int, connections: int) -> dict[str, Any]:
    """``redis-benchmark`` rows: ops/s and p50 of the scripts a call runs, and of ``PING``
    for scale. Keys over 100 providers (``-r 100``): sets of up to 100 members."""
    from providerhub._state.redis.scripts import READ, SPEND, TAKE

    tool = shutil.which("redis-benchmark")
    if tool is None:
        return {"skipped": "redis-benchmark is not installed (apt-get install redis-tools)"}
    load = redis_proc.client.script_load
    take, read, spend = load(TAKE), load(READ), load(SPEND)
    key = "bench:{p:__rand_int__}"
    rpm = f"{key}:rpm {key}:tpm {HIGH} -1 60000 m__rand_int__"
    both = f"{key}:rpm {key}:tpm {HIGH} {HIGH} 60000 m__rand_int__"
    rows = {
        "PING": "PING",
        "limiter, rpm (EVALSHA)": f"EVALSHA {take} 2 {rpm}",
        "limiter, rpm+tpm (EVALSHA)": f"EVALSHA {take} 2 {both}",
        "tokens spent, tpm (EVALSHA)": f"EVALSHA {spend} 1 {key}:tpm 40 60000",
        "mirror read (EVALSHA)": f"EVALSHA {read} 2 {key}:breaker {key}:probe",
    }
    out: dict[str, Any] = {"requests": requests, "connections": connections}
    for label, command in rows.items():
        done = subprocess.run(
            [
                *(tool, "-h", "127.0.0.1", "-p", str(redis_proc.port), "-n", str(requests)),
                *("-c", str(connections), "-r", "100", "--csv", *command.split()),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        lines = [line for line in done.stdout.splitlines() if line.startswith('"')]
        if done.returncode != 0 or len(lines) < 2:
            raise RuntimeError(f"redis-benchmark failed for {label}: {done.stderr[-300:]}")
        head = [h.strip('"') for h in lines[0].split(",")]
        values = dict(zip(head, (v.strip('"') for v in lines[1].split(",")), strict=False))
        out[label] = {"ops": float(values["rps"]), "p50_ms": float(values["p50_latency_ms"])}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10_000, help="timed calls per row")
    parser.add_argument("--block", type=int, default=250, help="calls per alternating block")
    parser.add_argument("--count-calls", type=int, default=2_000, help="calls counted")
    parser.add_argument("--bench-requests", type=int, default=200_000, help="redis-benchmark -n")
    parser.add_argument("--bench-connections", type=int, default=32, help="redis-benchmark -c")
    parser.add_argument("--no-capacity", action="store_true", help="skip redis-benchmark")
    parser.add_argument(
        "--gateway-rounds",
        type=int,
        default=0,
        help="also run providerhub serve with and without Redis under wrk at 1 connection, "
        "this many alternating rounds of --gateway-seconds (default 0: not)",
    )
    parser.add_argument("--gateway-seconds", type=float, default=5.0)
    parser.add_argument(
        "--load-rounds",
        type=int,
        default=0,
        help="also run providerhub serve with a rate-limited endpoint under wrk at 32 "
        "connections, Redis on loopback and --delays ms away, this many alternating rounds "
        "of --load-seconds, /healthz sampled all along (default 0: not)",
    )
    parser.add_argument("--load-seconds", type=float, default=5.0)
    parser.add_argument("--load-connections", type=int, default=32, help="wrk -c of the load")
    parser.add_argument(
        "--delays", default="5", help="ms each way of the delayed Redis, comma-separated"
    )
    parser.add_argument(
        "--only-load", action="store_true", help="only the --load-rounds measurement"
    )
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)

    os.environ.pop("PROVIDERHUB_REDIS_URL", None)
    import providerhub

    doc: dict[str, Any] = {"busy_cores_before": busy_cores()}
    failures: list[str] = []
    upstream, port = start_upstream(["server.py"])
    redis_proc = RedisProcess()
    hubs: dict[str, Any] = {}
    try:
        base = f"http://127.0.0.1:{port}"
        for state in ("memory", "redis"):
            hub = providerhub.Hub(
                load_entrypoints=False, state="memory" if state == "memory" else redis_proc.url
            )
            for kind in KINDS:
                hub.register(BenchProvider(kind, base))
            hubs[state] = hub
        models = {kind: BenchProvider(kind, base).name for kind in KINDS}
        if not args.only_load:
            log(f"latency: {args.calls:,} calls a row, blocks of {args.block}")
            doc["latency"] = measure_latency(hubs, models, args.calls, args.block)
            log("one redis-py command alone")
            doc["round_trip_ms"] = round_trips(redis_proc, args.calls // 2, args.block)
            log(f"commands: {args.count_calls:,} calls a provider")
            doc["commands"] = count_commands(redis_proc, hubs["redis"], models, args.count_calls)
            if not hubs["redis"].state.status().shared:
                failures.append(f"Redis was lost on the way: {hubs['redis'].state.status()}")
        if not args.no_capacity and not args.only_load:
            log(f"redis-benchmark: -n {args.bench_requests:,} -c {args.bench_connections}")
            doc["capacity"] = capacity(redis_proc, args.bench_requests, args.bench_connections)
        if args.gateway_rounds:
            log(f"gateway: {args.gateway_rounds} rounds of {args.gateway_seconds:g} s")
            doc["gateway"] = measure_gateway(
                redis_proc, port, args.gateway_rounds, args.gateway_seconds
            )
        if args.load_rounds:
            delays = [float(d) for d in args.delays.split(",") if d.strip()]
            log(f"load: {args.load_rounds} rounds of {args.load_seconds:g} s, delays {delays} ms")
            doc["load"] = measure_load(
                redis_proc,
                port,
                delays,
                args.load_rounds,
                args.load_seconds,
                args.load_connections,
            )
        doc["redis_version"] = redis_proc.version
    except Exception as exc:  # a wrong answer, a tool that failed
        failures.append(f"{type(exc).__name__}: {exc}")
    finally:
        for hub in hubs.values():
            hub.close()
        redis_proc.stop()
        stop(upstream)
    doc["failures"] = failures
    report = render(doc, args)
    print(report)
    args.out.mkdir(parents=True, exist_ok=True)
    name = "state-load" if args.only_load else "state"
    (args.out / f"{name}.md").write_text(report)
    (args.out / f"{name}.json").write_text(json.dumps(doc, indent=2))
    return 1 if failures else 0


def render(doc: dict[str, Any], args: argparse.Namespace) -> str:
    import redis

    lines = [
        f"## Shared state: Redis on loopback against memory ({time.strftime('%Y-%m-%d')})",
        "",
        f"{os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}, redis-server {doc.get('redis_version', '?')}, "
        f"redis-py {redis.__version__}; non-streamed `hub.create(...)` against the bench "
        f"upstream, {args.calls:,} calls a row in alternating blocks of {args.block}.",
        "",
    ]
    latency = doc.get("latency")
    if latency:
        lines += [
            "| provider | memory p50 | Redis p50 | added p50 (paired) | ratio | memory p99 | "
            "Redis p99 | target | met |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
        ]
        for kind in KINDS:
            row = latency[kind]
            added = row["added_p50_ms"]
            lines.append(
                f"| {label(kind)} | {row['memory_p50_ms']:.3f} ms | {row['redis_p50_ms']:.3f} ms "
                f"| {added * 1000:+.0f} µs ({row['added_paired_ms'] * 1000:+.0f} µs) | "
                f"{row['redis_p50_ms'] / row['memory_p50_ms']:.2f}x | "
                f"{row['memory_p99_ms']:.3f} ms | {row['redis_p99_ms']:.3f} ms | "
                f"< {TARGET_ADDED_MS:g} ms | {'yes' if added < TARGET_ADDED_MS else '**no**'} |"
            )
    trips = doc.get("round_trip_ms")
    if trips:
        lines += [
            "",
            "One redis-py command alone, median (the cost of one round trip from this process): "
            + ", ".join(f"{name} {ms * 1000:.0f} µs" for name, ms in trips.items())
            + ".",
        ]
    commands = doc.get("commands")
    if commands:
        lines += [
            "",
            "| provider | calls/s (counted run) | commands sent per call | run inside scripts "
            "per call | by command, per call |",
            "| --- | ---: | ---: | ---: | --- |",
        ]
        for kind in KINDS:
            row = commands[kind]
            detail = ", ".join(
                f"{name.upper()} {n:.3f}" for name, n in row["by_command"].items() if n >= 0.0005
            )
            lines.append(
                f"| {label(kind)} | {row['calls_per_second']:,.0f} | "
                f"{row['sent_per_call']:.3f} | {row['inside_per_call']:.3f} | {detail} |"
            )
    cap = doc.get("capacity")
    if cap and "skipped" not in cap:
        lines += [
            "",
            f"One Redis, `redis-benchmark -n {cap['requests']:,} -c {cap['connections']} "
            "-r 100` (keys over 100 providers):",
            "",
            "| command | ops/s | p50 |",
            "| --- | ---: | ---: |",
        ]
        for name, row in cap.items():
            if isinstance(row, dict):
                lines.append(f"| {name} | {row['ops']:,.0f} | {row['p50_ms']:.3f} ms |")
    elif cap:
        lines += ["", f"Note: {cap['skipped']}"]
    gw = doc.get("gateway")
    if gw and "skipped" not in gw:
        added = gw["redis_p50_ms"] - gw["memory_p50_ms"]
        lines += [
            "",
            f"`providerhub serve`, one worker, an endpoint without limits, `wrk` at 1 "
            f"connection, median of {gw['rounds']} alternating rounds of {gw['seconds']:g} s:",
            "",
            "| state | req/s | p50 |",
            "| --- | ---: | ---: |",
            f"| memory | {gw['memory_rps']:,.0f} | {gw['memory_p50_ms']:.3f} ms |",
            f"| Redis (`PROVIDERHUB_REDIS_URL`) | {gw['redis_rps']:,.0f} | "
            f"{gw['redis_p50_ms']:.3f} ms ({added * 1000:+.0f} µs) |",
            "",
            "Redis commands per gateway request: "
            + ", ".join(
                f"{name.upper()} {n:.3f}"
                for name, n in gw["redis_commands_per_request"].items()
                if n >= 0.0005
            )
            + ".",
        ]
    elif gw:
        lines += ["", f"Note: {gw['skipped']}"]
    load = doc.get("load")
    if load and "skipped" not in load:
        rows = load["rows"]
        local = rows[0]
        lines += [
            "",
            f"`providerhub serve`, one worker, an endpoint with an `rpm` it never reaches (one "
            f"limiter script per request), `wrk` at {load['connections']} connections, "
            f"median of {load['rounds']} alternating rounds of {load['seconds']:g} s; "
            "`/healthz` asked every 10 ms on a connection of its own meanwhile, and Redis "
            "`PING`ed as often (its round trip under the load). Redis on loopback, and "
            "behind a proxy that holds each direction the given time:",
            "",
            "| Redis | `PING` p50 | req/s | of loopback | p50 | p99 | `/healthz` p50 | p99 | "
            "max | commands/request | gateway CPU/request | gateway CPU | proxy CPU | "
            "machine busy | met |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
            "| ---: | ---: | --- |",
        ]
        for row in rows:
            ratio = row["rps"] / local["rps"] if local["rps"] else 0.0
            met = ratio >= TARGET_LOAD_RATIO and row["healthz_p50_ms"] < TARGET_HEALTHZ_MS
            where = "loopback" if not row["delay_ms"] else f"{row['delay_ms']:g} ms each way"
            lines.append(
                f"| {where} | {row['ping_p50_ms']:.2f} ms | {row['rps']:,.0f} | {ratio:.0%} | "
                f"{row['p50_ms']:.1f} ms | "
                f"{row['p99_ms']:.1f} ms | {row['healthz_p50_ms']:.2f} ms | "
                f"{row['healthz_p99_ms']:.2f} ms | {row['healthz_max_ms']:.1f} ms | "
                f"{row['commands_per_request']:.3f} | {row['gateway_cpu_us']:.0f} µs | "
                f"{row['gateway_cpu_share']:.0%} | {row['proxy_cpu_share']:.0%} | "
                f"{row['machine_busy_cores']:.2f} cores | {'yes' if met else '**no**'} |"
            )
        lines += [
            "",
            f"Targets (issue 15): at least {TARGET_LOAD_RATIO:.0%} of the loopback rate, "
            f"`/healthz` p50 under {TARGET_HEALTHZ_MS:g} ms.",
        ]
    elif load:
        lines += ["", f"Note: {load['skipped']}"]
    lines += [
        "",
        f"Before the run, other processes kept {doc['busy_cores_before']:.2f} of the "
        f"{os.cpu_count()} cores busy.",
    ]
    for failure in doc.get("failures", []):
        lines += ["", f"FAILED: {failure}"]
    return "\n".join(lines) + "\n"


def label(kind: str) -> str:
    return {
        "plain": "no limits (breaker mirror)",
        "rpm": "`rpm` (limiter script)",
        "rpm+tpm": "`rpm` + `tpm` (limiter + tokens)",
    }[kind]


if __name__ == "__main__":
    sys.exit(main())
