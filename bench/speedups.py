"""Measure the speed tricks of ``providerhub/_speedups.py`` against their plain fallbacks.

::

    .venv/bin/python bench/speedups.py

Each figure is CPU time, best of many runs, for 20,000 stream events: the JSON of a
typical chat completion chunk parsed by ``scan_json`` and by ``json.loads``, and the
events of an SSE stream built by ``tuple.__new__`` and by the NamedTuple's constructor,
at one and at sixteen events per chunk. The per-event gain is what a trick saves on
each streamed chunk (bench/run.py figure 3 streams about 7 us a chunk).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from providerhub import _speedups
from providerhub._codecs import sse

EVENTS = 20_000
RUNS = 41
DATA = (
    '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m",'
    '"choices":[{"index":0,"delta":{"content":" tok"},"finish_reason":null}]}'
)


def best(run: Callable[[], None]) -> float:
    """The least CPU time of ``RUNS`` runs, in seconds."""
    found = float("inf")
    for _ in range(RUNS):
        start = time.process_time()
        run()
        found = min(found, time.process_time() - start)
    return found


def parse(loads: Callable[[str], object]) -> float:
    def run() -> None:
        for _ in range(EVENTS):
            loads(DATA)

    return best(run)


def feed(per_chunk: int, make: Callable[..., sse.Event]) -> float:
    chunks = [(b"data: " + DATA.encode() + b"\n\n") * per_chunk] * (EVENTS // per_chunk)
    saved = sse._new_event
    sse._new_event = make

    def run() -> None:
        parser = sse.SSEParser()
        for chunk in chunks:
            parser.feed(chunk)

    try:
        return best(run)
    finally:
        sse._new_event = saved


def main() -> None:
    def row(what: str, trick: float, plain: float) -> None:
        gain = (plain - trick) / EVENTS * 1e9
        print(f"| {what} | {trick * 1e3:.1f} ms | {plain * 1e3:.1f} ms | {gain:.0f} ns |")

    print("| 20,000 events | trick | plain | gain an event |")
    print("| --- | ---: | ---: | ---: |")
    row("JSON: `scan_json` / `json.loads`", parse(_speedups.scan_json), parse(json.loads))
    for per_chunk in (1, 16):
        row(
            f"SSE, {per_chunk} a chunk: `tuple.__new__` / `Event(...)`",
            feed(per_chunk, tuple.__new__),
            feed(per_chunk, _speedups.plain_new),
        )


if __name__ == "__main__":
    main()
