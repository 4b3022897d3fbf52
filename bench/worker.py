"""One measurement, in a fresh process: ``python bench/worker.py '<spec as JSON>'``.

The spec names a ``kind`` (``nonstream``, ``stream``, ``concurrent``, ``route``, ``rss``),
a ``client`` from :mod:`clients` and the sizes. The worker warms up, measures, checks every
answer against :mod:`protocol` (a wrong answer exits non-zero, whatever its speed), and
prints one line of JSON: ``{"value": ..., "unit": ..., "details": {...}}``.

``"block": ["orjson", ...]`` makes those modules unimportable before anything else is
imported, to measure "the standard library alone" in an environment that has them.
``"profile": PATH`` runs the measured part under cProfile and writes its stats to ``PATH``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class WrongAnswer(AssertionError):
    """A client returned something other than what the server sent."""


def _check(got: str, want: str, what: str) -> None:
    if got != want:
        pairs = enumerate(zip(got, want))
        at = next((i for i, (a, b) in pairs if a != b), min(len(got), len(want)))
        raise WrongAnswer(
            f"{what}: wrong content (got {len(got)} chars, want {len(want)}; first difference "
            f"at {at}: {got[at : at + 20]!r} vs {want[at : at + 20]!r})"
        )


class _Profiler:
    """cProfile around the measured part when the spec asks for it; nothing otherwise."""

    def __init__(self, path: str | None, *, dump: bool = True) -> None:
        self.path = path
        self.dump = dump
        self.profile: Any = None
        if path:
            import cProfile

            self.profile = cProfile.Profile()

    def __enter__(self) -> _Profiler:
        if self.profile is not None:
            self.profile.enable()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.profile is not None:
            self.profile.disable()
            if self.dump:
                self.profile.dump_stats(self.path)

    @staticmethod
    def merge(profilers: list[_Profiler], path: str) -> None:
        """Write the sum of several threads' profiles to ``path``."""
        import pstats

        used = [p.profile for p in profilers if p.profile is not None]
        if used:
            stats = pstats.Stats(used[0])
            for other in used[1:]:
                stats.add(other)
            stats.dump_stats(path)


class _ServerLoad:
    """The bench server's CPU time over the measured part, as a share of one core: near
    100% would mean the server, not the client, sets the pace."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.share: float | None = None
        self._cpu = 0.0
        self._wall = 0.0

    def _cpu_seconds(self) -> float | None:
        try:
            with open(f"/proc/{self.pid}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def __enter__(self) -> _ServerLoad:
        self._cpu = (self._cpu_seconds() or 0.0) if self.pid else 0.0
        self._wall = time.perf_counter()
        return self

    def __exit__(self, *exc_info: object) -> None:
        wall = time.perf_counter() - self._wall
        cpu = self._cpu_seconds() if self.pid else None
        if cpu is not None and wall >= 0.2:  # the clock ticks every 10 ms
            self.share = (cpu - self._cpu) / wall


def measure_nonstream(spec: dict[str, Any]) -> dict[str, Any]:
    """Median latency of one warm non-streamed completion, in microseconds."""
    import clients
    import protocol

    client = clients.make(spec["client"], spec["base_url"])
    pid = os.getpid()
    for i in range(spec["warmup"]):
        nonce = protocol.nonce_for(pid, i)
        _check(client.nonstream(nonce), protocol.reply_text(nonce), "warm-up")
    count = spec["count"]
    nonces = [protocol.nonce_for(pid, spec["warmup"] + i) for i in range(count)]
    times: list[float] = []
    got: list[str] = []
    clock = time.perf_counter_ns
    call = client.nonstream
    load = _ServerLoad(spec.get("server_pid"))
    with _Profiler(spec.get("profile")), load:
        for nonce in nonces:
            t0 = clock()
            text = call(nonce)
            t1 = clock()
            times.append((t1 - t0) / 1000)
            got.append(text)
    for nonce, text in zip(nonces, got):
        _check(text, protocol.reply_text(nonce), "non-stream")
    client.close()
    return {
        "value": _median(times),
        "unit": "us",
        "details": {
            "calls": count,
            "mean_us": sum(times) / count,
            "p10_us": _quantile(times, 0.1),
            "p90_us": _quantile(times, 0.9),
            "server_cpu_share": load.share,
        },
    }


def _timed_stream(client: Any, nonce: str, pieces: int) -> tuple[float, str, int]:
    stream_body = getattr(client, "stream_body", None)
    if stream_body is not None:  # the ceiling: time the transfer, parse afterwards
        import protocol

        t0 = time.perf_counter()
        body = stream_body(nonce, pieces)
        elapsed = time.perf_counter() - t0
        text, count = protocol.parse_sse_text(body)
        return elapsed, text, count
    t0 = time.perf_counter()
    text, count = client.stream(nonce, pieces)
    return time.perf_counter() - t0, text, count


def measure_stream(spec: dict[str, Any]) -> dict[str, Any]:
    """Median pieces per second of one streamed completion of ``pieces`` pieces."""
    import clients
    import protocol

    client = clients.make(spec["client"], spec["base_url"])
    pid = os.getpid()
    pieces = spec["pieces"]
    warm = spec["warmup_pieces"]
    _, text, _ = _timed_stream(client, protocol.nonce_for(pid, 0), warm)
    _check(text, protocol.stream_text(protocol.nonce_for(pid, 0), warm), "warm-up")
    rates: list[float] = []
    load = _ServerLoad(spec.get("server_pid"))
    with _Profiler(spec.get("profile")), load:
        for i in range(1, spec["repeat"] + 1):
            nonce = protocol.nonce_for(pid, i)
            elapsed, text, count = _timed_stream(client, nonce, pieces)
            _check(text, protocol.stream_text(nonce, pieces), "stream")
            if count != pieces:
                raise WrongAnswer(f"stream: {count} pieces, want {pieces}")
            rates.append(pieces / elapsed)
    client.close()
    fast_json = sorted(
        m for m in ("orjson", "ujson", "msgspec", "simdjson") if sys.modules.get(m) is not None
    )
    return {
        "value": _median(rates),
        "unit": "chunks/s",
        "details": {
            "pieces": pieces,
            "rates": rates,
            "fast_json_loaded": fast_json,
            "server_cpu_share": load.share,
        },
    }


def measure_concurrent(spec: dict[str, Any]) -> dict[str, Any]:
    """Total pieces per second of ``threads`` threads streaming at once."""
    import itertools
    import threading

    import clients
    import protocol

    threads = spec["threads"]
    pieces = spec["pieces"]
    per_thread = spec["streams_per_thread"]
    pid = os.getpid()
    counter = itertools.count()
    first = clients.make(spec["client"], spec["base_url"])
    if first.shared:
        per_client = [first] * threads
    else:
        per_client = [first] + [
            clients.make(spec["client"], spec["base_url"]) for _ in range(threads - 1)
        ]
    results: list[list[tuple[str, str, int]]] = [[] for _ in range(threads)]
    failures: list[BaseException] = []
    profiles: list[_Profiler] = []
    profiling = False

    def run(index: int, barrier: threading.Barrier, streams: int, size: int) -> None:
        client = per_client[index]
        mine = results[index]
        profiler = _Profiler(spec.get("profile") if profiling else None, dump=False)
        profiles.append(profiler)
        try:
            barrier.wait(timeout=120)
            with profiler:  # cProfile sees one thread: each thread has its own
                for _ in range(streams):
                    nonce = protocol.nonce_for(pid, next(counter))
                    text, count = client.stream(nonce, size)
                    mine.append((nonce, text, count))
        except BaseException as exc:
            failures.append(exc)

    def one_round(streams: int, size: int) -> float:
        barrier = threading.Barrier(threads + 1)
        workers = [
            threading.Thread(target=run, args=(i, barrier, streams, size), daemon=True)
            for i in range(threads)
        ]
        for w in workers:
            w.start()
        barrier.wait(timeout=120)
        t0 = time.perf_counter()
        for w in workers:
            w.join(timeout=600)
        elapsed = time.perf_counter() - t0
        if failures:
            raise failures[0]
        if any(w.is_alive() for w in workers):
            raise TimeoutError("a streaming thread did not finish in 600 s")
        return elapsed

    one_round(1, spec["warmup_pieces"])  # every thread opens its connection
    for mine in results:
        mine.clear()
    profiling = True
    rates: list[float] = []
    load = _ServerLoad(spec.get("server_pid"))
    with load:
        for _ in range(spec["repeat"]):
            elapsed = one_round(per_thread, pieces)
            rates.append(threads * per_thread * pieces / elapsed)
    if spec.get("profile"):
        _Profiler.merge(profiles, spec["profile"])
    for mine in results:
        for nonce, text, count in mine:
            _check(text, protocol.stream_text(nonce, pieces), "concurrent stream")
            if count != pieces:
                raise WrongAnswer(f"concurrent stream: {count} pieces, want {pieces}")
    if sum(len(m) for m in results) != threads * per_thread * spec["repeat"]:
        raise WrongAnswer("concurrent: some streams are missing")
    for client in {id(c): c for c in per_client}.values():
        client.close()
    return {
        "value": _median(rates),
        "unit": "chunks/s",
        "details": {
            "threads": threads,
            "pieces": pieces,
            "rates": rates,
            "server_cpu_share": load.share,
        },
    }


def _fake_completion(model: str, messages: list[Any], stream: bool, **kwargs: Any) -> Any:
    yield "never called by route()"


def measure_route(spec: dict[str, Any]) -> dict[str, Any]:
    """Median time of one ``hub.route()`` among ``providers`` registered providers."""
    import random
    import types

    import providerhub

    n = spec["providers"]
    models_per = spec["models_per"]
    hub = providerhub.Hub(load_entrypoints=False)
    t0 = time.perf_counter()
    for i in range(n):
        module: Any = types.ModuleType(f"bench_provider_{i}")
        module.url = "http://127.0.0.1:9"
        module.model = [f"bench-{i}-{j}" for j in range(models_per)]
        module.supports_stream = True
        module.needs_auth = False
        module.working = True
        module._create_completion = _fake_completion
        hub.register(module, name=f"bench-provider-{i}")
    register_s = time.perf_counter() - t0
    rng = random.Random(spec.get("seed", 4))
    picks = [(rng.randrange(n), rng.randrange(models_per)) for _ in range(spec["calls"])]
    models = [f"bench-{i}-{j}" for i, j in picks]
    want = [f"bench-provider-{i}" for i, _ in picks]
    route = hub.route
    for model in models[:100]:  # warm-up
        route(model, stream=True)
    per_call: list[float] = []
    with _Profiler(spec.get("profile")):
        for _ in range(spec["batches"]):
            t0 = time.perf_counter()
            found = [route(model, stream=True) for model in models]
            per_call.append((time.perf_counter() - t0) / len(models) * 1e6)
            for candidates, name in zip(found, want):
                if len(candidates) != 1 or candidates[0].name != name:
                    raise WrongAnswer(f"route: got {candidates!r}, want [{name}]")
    return {
        "value": _median(per_call),
        "unit": "us",
        "details": {"providers": n, "register_s": register_s, "calls": len(models)},
    }


def _peak_rss_kb() -> tuple[int, str]:
    """This process's peak resident set size in KiB, and where it was read.

    ``VmHWM`` first: ``getrusage``'s ``ru_maxrss`` also counts the parent's memory that the
    process had before ``exec`` (vfork shares it), so a big parent inflates it."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]), "VmHWM"
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "ru_maxrss"


def measure_rss(spec: dict[str, Any]) -> dict[str, Any]:
    """Peak resident memory after importing the client's library and one call."""
    import clients
    import protocol

    client = clients.make(spec["client"], spec["base_url"])
    nonce = protocol.nonce_for(os.getpid(), 0)
    _check(client.nonstream(nonce), protocol.reply_text(nonce), "rss call")
    peak_kb, source = _peak_rss_kb()
    details = {"peak_kb": peak_kb, "source": source}
    return {"value": peak_kb / 1024, "unit": "MB", "details": details}


KINDS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "nonstream": measure_nonstream,
    "stream": measure_stream,
    "concurrent": measure_concurrent,
    "route": measure_route,
    "rss": measure_rss,
}


def main(argv: list[str]) -> int:
    spec = json.loads(argv[1])
    for name in spec.get("block", []):
        sys.modules[name] = None  # type: ignore[assignment]  # import now raises ImportError
    try:
        result = KINDS[spec["kind"]](spec)
    except WrongAnswer as exc:
        print(f"WRONG ANSWER: {exc}", file=sys.stderr)
        return 3
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
