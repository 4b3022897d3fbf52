"""The six figures of issue 4, as measurements and table rows.

====  ===================================================  ==================================
fig.  providerhub                                          baseline, in the same run
====  ===================================================  ==================================
1     ``python -c "import providerhub"``, ``providerhub    ``python -c "import requests"``
      providers``; in a scratch venv with 100 plugins:     in the same environment
      ``import providerhub; providerhub.Hub()``, the CLI
2     ``hub.create(...)``, warm, non-streamed              ``Session().post(...).json()``
3     ``hub.create(..., stream=True)``, 20,000 pieces      ``iter_lines()`` + ``json.loads``
4     ``hub.route()``, 10 / 1,000 / 10,000 providers       the same with 10 providers
5     32 threads streaming through one hub                 32 threads, a ``Session`` each
6     peak RSS after import and one call                   the same with ``requests``
====  ===================================================  ==================================
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suite import Measurement, Row, Target

FAST_JSON = ["orjson", "ujson", "msgspec", "simdjson"]
"""Blocked in the "standard library alone" stream measurement."""

COMPARISONS = {"openai": "openai SDK", "litellm": "LiteLLM"}
"""Optional comparison libraries, by module name, with their labels."""


@dataclass(frozen=True)
class Sizes:
    """How much each figure does; ``--quick`` uses smaller ones."""

    reps: int = 7
    cold_reps: int = 21
    compare_reps: int = 5
    nonstream_warmup: int = 200
    nonstream_count: int = 2000
    stream_pieces: int = 20_000
    stream_warmup: int = 2000
    stream_repeat: int = 5
    compare_stream_repeat: int = 2
    threads: int = 32
    concurrent_pieces: int = 2000
    concurrent_streams: int = 2
    concurrent_repeat: int = 2
    route_providers: tuple[int, ...] = (10, 1000, 10_000)
    route_models: int = 10
    route_calls: int = 1000
    route_batches: int = 30


FULL = Sizes()
QUICK = Sizes(
    reps=3,
    cold_reps=5,
    compare_reps=2,
    nonstream_warmup=50,
    nonstream_count=300,
    stream_pieces=5000,
    stream_warmup=500,
    stream_repeat=2,
    compare_stream_repeat=1,
    concurrent_pieces=300,
    concurrent_streams=1,
    concurrent_repeat=1,
    route_calls=500,
    route_batches=5,
)


@dataclass
class Setup:
    """What the figures run against: the server, the interpreters, the scratch venv and
    the optional libraries found."""

    base_url: str
    sizes: Sizes
    python: str = sys.executable
    compare_python: str = sys.executable
    scratch_python: str | None = None
    scratch_script: str | None = None
    has_orjson: bool = False
    server_pid: int | None = None
    batched: tuple[str, int, int] | None = None
    """A second server batching events: its base URL, pid and events per HTTP chunk."""
    comparisons: dict[str, bool] = field(default_factory=dict)


def providerhub_script(python: str) -> str:
    """The ``providerhub`` console script next to ``python``."""
    beside = Path(python).parent / "providerhub"
    if beside.exists():
        return str(beside)
    found = shutil.which("providerhub")
    if found is None:
        raise FileNotFoundError("no providerhub script beside the interpreter or on PATH")
    return found


class _Builder:
    """Collects measurements and rows."""

    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self.measurements: list[Measurement] = []
        self.rows: list[Row] = []

    def worker(self, key: str, spec: dict[str, Any], reps: int, python: str | None = None) -> str:
        spec = {"base_url": self.setup.base_url, "server_pid": self.setup.server_pid, **spec}
        self.measurements.append(
            Measurement(key, reps, python=python or self.setup.python, spec=spec)
        )
        return key

    def command(self, key: str, argv: list[str], expect: str | None = None) -> str:
        reps = self.setup.sizes.cold_reps
        self.measurements.append(Measurement(key, reps, command=argv, expect=expect, timeout=60))
        return key

    def row(self, figure: str, subject: str, key: str, **fields: Any) -> None:
        self.rows.append(Row(figure, subject, key, **fields))


def _cold_start(b: _Builder) -> None:
    setup = b.setup
    py = setup.python
    req = b.command("cold/import-requests", [py, "-c", "import requests"])
    cold = {"unit": "ms", "better": "lower", "baseline": req, "baseline_label": "import requests"}
    b.command("cold/import-providerhub", [py, "-c", "import providerhub"])
    b.command("cold/providers-cli", [providerhub_script(py), "providers"], "gravityengine")
    b.row("1. cold start: import providerhub", "providerhub", "cold/import-providerhub", **cold)
    b.row(
        "1. cold start: `providerhub providers` end to end",
        "providerhub",
        "cold/providers-cli",
        target=Target("ratio_max", 1.0, "<= 1.0x"),
        **cold,
    )
    for lib, label in COMPARISONS.items():
        if setup.comparisons.get(lib):
            key = b.command(f"cold/import-{lib}", [setup.compare_python, "-c", f"import {lib}"])
            b.row(f"1. cold start: import {lib}", label, key, **cold)
    if setup.scratch_python and setup.scratch_script:
        sp = setup.scratch_python
        sreq = b.command("cold100/import-requests", [sp, "-c", "import requests"])
        cold100 = {**cold, "baseline": sreq}
        b.command("cold100/hub", [sp, "-c", "import providerhub; providerhub.Hub()"])
        b.command("cold100/providers-cli", [setup.scratch_script, "providers"], "bench_plugin_099")
        b.row(
            "1. cold start, 100 plugins: import providerhub + Hub()",
            "providerhub",
            "cold100/hub",
            target=Target("ratio_max", 1.5, "<= 1.5x"),
            **cold100,
        )
        b.row(
            "1. cold start, 100 plugins: `providerhub providers`",
            "providerhub",
            "cold100/providers-cli",
            **cold100,
        )


def _route(b: _Builder) -> None:
    s = b.setup.sizes
    smallest = min(s.route_providers)
    largest = max(s.route_providers)
    for count in s.route_providers:
        spec = {
            "kind": "route",
            "providers": count,
            "models_per": s.route_models,
            "calls": s.route_calls,
            "batches": s.route_batches,
        }
        key = b.worker(f"route/{count}", spec, s.reps)
        fields: dict[str, Any] = {
            "unit": "us",
            "better": "lower",
            "baseline_label": f"{smallest:,} providers",
        }
        if count != smallest:
            fields["baseline"] = f"route/{smallest}"
        b.row(
            f"4. hub.route(), {count:,} providers",
            "providerhub",
            key,
            target=Target("abs_max", 5.0, "<= 5 us") if count == largest else None,
            **fields,
        )
        if count == largest and count != smallest:
            b.row(
                f"4. hub.route() scaling, {count:,} vs {smallest:,} providers",
                "providerhub",
                key,
                target=Target("ratio_max", 1.5, "<= 1.5x"),
                **fields,
            )


def build(setup: Setup) -> tuple[list[Measurement], list[Row]]:
    """Every measurement and row for ``setup``."""
    s = setup.sizes
    b = _Builder(setup)
    _cold_start(b)

    # 2. warm non-stream request
    ns = {"kind": "nonstream", "warmup": s.nonstream_warmup, "count": s.nonstream_count}
    ns_fields = {"unit": "us", "better": "lower"}
    ns_fields["baseline"] = b.worker("nonstream/requests", {**ns, "client": "requests"}, s.reps)
    b.worker("nonstream/providerhub", {**ns, "client": "providerhub"}, s.reps)
    ns_label = "2. warm non-stream request (median latency)"
    b.row(
        ns_label,
        "providerhub",
        "nonstream/providerhub",
        target=Target("ratio_max", 1.03, "<= 1.03x"),
        **ns_fields,
    )

    # 3. stream of 20,000 pieces
    st = {
        "kind": "stream",
        "pieces": s.stream_pieces,
        "warmup_pieces": s.stream_warmup,
        "repeat": s.stream_repeat,
    }
    st_fields = {"unit": "chunks/s", "better": "higher"}
    st_fields["baseline"] = b.worker("stream/requests", {**st, "client": "requests"}, s.reps)
    b.worker("stream/providerhub", {**st, "client": "providerhub", "block": FAST_JSON}, s.reps)
    st_label = f"3. stream of {s.stream_pieces:,} chunks"
    b.row(
        f"{st_label}, standard library alone",
        "providerhub",
        "stream/providerhub",
        target=Target("ratio_min", 1.2, ">= 1.2x"),
        **st_fields,
    )
    if setup.has_orjson:
        b.worker("stream/providerhub-orjson", {**st, "client": "providerhub"}, s.reps)
        b.row(
            f"{st_label}, orjson installed",
            "providerhub",
            "stream/providerhub-orjson",
            target=Target("ratio_min", 2.0, ">= 2x"),
            **st_fields,
        )

    if setup.batched is not None:  # context: the same stream, events batched
        url, pid, events = setup.batched
        other = {**st, "base_url": url, "server_pid": pid}
        raw = b.worker("stream-batched/requests", {**other, "client": "requests"}, s.reps)
        key = b.worker(
            "stream-batched/providerhub",
            {**other, "client": "providerhub", "block": FAST_JSON},
            s.reps,
        )
        b.row(
            f"{st_label}, {events} events per HTTP chunk (context, no target)",
            "providerhub",
            key,
            **{**st_fields, "baseline": raw},
        )

    # 4. hub.route()
    _route(b)

    # 5. 32 concurrent streams
    cc = {
        "kind": "concurrent",
        "threads": s.threads,
        "pieces": s.concurrent_pieces,
        "streams_per_thread": s.concurrent_streams,
        "repeat": s.concurrent_repeat,
        "warmup_pieces": 50,
    }
    cc_fields = {"unit": "chunks/s", "better": "higher"}
    cc_fields["baseline"] = b.worker("concurrent/requests", {**cc, "client": "requests"}, s.reps)
    b.worker("concurrent/providerhub", {**cc, "client": "providerhub"}, s.reps)
    cc_label = f"5. {s.threads} concurrent streams (total)"
    b.row(
        cc_label,
        "providerhub",
        "concurrent/providerhub",
        target=Target("ratio_min", 0.9, ">= 0.9x"),
        **cc_fields,
    )

    # 6. peak RSS
    rss_fields = {"unit": "MB", "better": "lower"}
    rss_fields["baseline"] = b.worker("rss/requests", {"kind": "rss", "client": "requests"}, s.reps)
    b.worker("rss/providerhub", {"kind": "rss", "client": "providerhub"}, s.reps)
    rss_label = "6. peak RSS after import + one call"
    b.row(
        rss_label,
        "providerhub",
        "rss/providerhub",
        target=Target("delta_max", 5.0, "<= raw + 5 MB"),
        **rss_fields,
    )

    # Comparison rows: the openai SDK and LiteLLM, where installed; fewer repeats, as they
    # are slower and carry no target.
    light_st = {**st, "repeat": s.compare_stream_repeat}
    light_cc = {**cc, "streams_per_thread": 1, "repeat": 1}
    for lib, label in COMPARISONS.items():
        if not setup.comparisons.get(lib):
            continue
        cp = setup.compare_python
        reps = s.compare_reps
        for figure, fields, key, spec in (
            (ns_label, ns_fields, f"nonstream/{lib}", ns),
            (st_label, st_fields, f"stream/{lib}", light_st),
            (cc_label, cc_fields, f"concurrent/{lib}", light_cc),
            (rss_label, rss_fields, f"rss/{lib}", {"kind": "rss"}),
        ):
            b.row(figure, label, b.worker(key, {**spec, "client": lib}, reps, cp), **fields)
    return b.measurements, b.rows


def ceilings(setup: Setup) -> list[Measurement]:
    """The server's own ceiling, seen by a bare ``http.client`` loop: one connection
    non-streamed and streamed, and the concurrent streams of figure 5."""
    s = setup.sizes
    base = {"base_url": setup.base_url, "server_pid": setup.server_pid, "client": "httpclient"}
    nonstream = {"kind": "nonstream", "warmup": 200, "count": max(2000, s.nonstream_count)}
    stream = {
        "kind": "stream",
        "pieces": s.stream_pieces,
        "warmup_pieces": s.stream_warmup,
        "repeat": 5,
    }
    concurrent = {
        "kind": "concurrent",
        "threads": s.threads,
        "pieces": s.concurrent_pieces,
        "streams_per_thread": s.concurrent_streams,
        "repeat": 1,
        "warmup_pieces": 50,
    }
    return [
        Measurement("ceiling/nonstream", 3, spec={**base, **nonstream}),
        Measurement("ceiling/stream", 3, spec={**base, **stream}),
        Measurement("ceiling/concurrent", 3, spec={**base, **concurrent}),
    ]
