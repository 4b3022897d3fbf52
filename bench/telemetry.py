"""What recording a request costs the gateway (issue 19, point 4): the record, timings and
histograms every request pays, the JSON access log line, and OpenTelemetry's spans (a
request's and one attempt's) with the SDK's in-memory exporter, synchronously
(``SimpleSpanProcessor``: the export's own work counted on the request) and batched
(``BatchSpanProcessor``, as deployed: the export off the request's path).

Each case drives the gateway's :class:`~providerhub.server._telemetry.Telemetry` around a
request handler that does what a served chat completion reports to it (one attempt, the
answer's status, a completion with usage), on an event loop, and prints the median and
p99 of the per-request time in microseconds, and the median added over a handler with no
recording at all. With ``--gateway``, the same app serves real requests too (uvicorn on
127.0.0.1 in this process, over the suite's OpenAI-compatible stand-in): blocks of
sequential chat completions on one keep-alive connection, with and without spans (the
in-memory exporter behind ``--processor``: ``batch``, as deployed, or ``simple``),
alternated, and the medians of the calls compared. docs/benchmarks.md has the figures::

    .venv/bin/python bench/telemetry.py [--requests 20000]
    .venv/bin/python bench/telemetry.py --gateway [--rounds 50] [--calls 100] [--processor batch]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import statistics
import time
from typing import Any

from providerhub.server import _telemetry
from providerhub.server._access_log import AccessLog
from providerhub.server._metrics import Metrics
from providerhub.types import ChatCompletion

ANSWER = ChatCompletion.from_dict(
    {
        "id": "c",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-4o-mini",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }
)


class _Hub:
    def __init__(self) -> None:
        self.providers: dict[str, Any] = {}


def _handler(metrics: Metrics, create: Any) -> Any:
    async def chat(*args: Any) -> None:
        await create(model="gpt-4o-mini")
        _telemetry.observe_attempt("openai", "gpt-4o-mini", 1, "ok", 0.0005)
        metrics.answered("/v1/chat/completions", 200)

    return chat


async def _answer(**request: Any) -> ChatCompletion:
    return ANSWER


async def _run(case: str, requests: int) -> list[float]:
    metrics = Metrics()
    access = tracing = None
    if case == "access log":
        access = AccessLog()
        logger = logging.getLogger("providerhub.access")
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.addHandler(logging.StreamHandler(io.StringIO()))
        logger.propagate = False
    if case.startswith("otel"):
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
            InMemorySpanExporter,
        )

        from providerhub.server._otel import Tracing

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        processor = SimpleSpanProcessor if case == "otel (simple)" else BatchSpanProcessor
        provider.add_span_processor(processor(exporter))  # type: ignore[abstract]
        tracing = Tracing(_Hub(), provider)  # type: ignore[arg-type]
    telemetry = _telemetry.Telemetry(metrics, access, tracing, lambda _: "team")
    create = telemetry.around_create(_answer)
    chat = _handler(metrics, create)
    if case != "none":
        chat = telemetry.around(chat)
    headers = [(b"x-request-id", b"r-1")]
    times = []
    clock = time.perf_counter
    for _ in range(requests):
        started = clock()
        await chat(None, None, headers, b"Bearer k")
        times.append(clock() - started)
        if tracing is not None and len(times) % 1000 == 0:
            exporter.clear()
    if tracing is not None:
        provider.shutdown()
    return times


def _gateway(rounds: int, calls: int, processor: str) -> None:
    import http.client
    import json
    import os
    import threading

    import uvicorn
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import providerhub
    from providerhub.server._app import App
    from providerhub.server._config import ServerSettings
    from providerhub.testing import OpenAIServer

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    chosen = BatchSpanProcessor if processor == "batch" else SimpleSpanProcessor
    provider.add_span_processor(chosen(exporter))
    trace.set_tracer_provider(provider)
    with OpenAIServer() as upstream:
        os.environ["PROVIDERHUB_GRAVITYENGINE_URL"] = upstream.url
        os.environ["PROVIDERHUB_GRAVITYENGINE_API_KEY"] = "sk-bench"
        hub = providerhub.Hub()
        app = App(hub, ServerSettings())
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        )
        runner = threading.Thread(target=server.run, daemon=True)
        runner.start()
        while not server.started:
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        conn = http.client.HTTPConnection("127.0.0.1", port)
        body = json.dumps(
            {"model": "gpt-3.5-turbo-16k", "messages": [{"role": "user", "content": "Hi"}]}
        ).encode()
        headers = {"content-type": "application/json"}

        def one_round() -> list[float]:
            times = []
            for _ in range(calls):
                started = time.perf_counter()
                conn.request("POST", "/v1/chat/completions", body, headers)
                response = conn.getresponse()
                response.read()
                times.append(time.perf_counter() - started)
                assert response.status == 200
            exporter.clear()
            return times

        one_round()  # warm
        # Short blocks, alternated, so that the machine's other work falls on both alike.
        times: dict[bool, list[float]] = {False: [], True: []}
        for i in range(rounds):
            for otel in (False, True) if i % 2 == 0 else (True, False):
                app.configure(hub, ServerSettings(otel=otel))
                times[otel] += one_round()
        conn.close()
        server.should_exit = True
        runner.join(10)
    off, on = (statistics.median(times[o]) * 1e6 for o in (False, True))
    print(
        f"gateway ({processor} span processor): {rounds} blocks of {calls} calls each way, "
        "alternated; median of the calls:"
    )
    print(f"  spans off {off:.0f} µs, on {on:.0f} µs, added {on - off:+.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--gateway", action="store_true", help="also through a served app")
    parser.add_argument("--rounds", type=int, default=50, help="gateway blocks each way")
    parser.add_argument("--calls", type=int, default=100, help="calls a gateway block")
    parser.add_argument(
        "--processor",
        choices=("batch", "simple"),
        default="batch",
        help="the gateway's span processor: batch (as deployed) or simple",
    )
    args = parser.parse_args()
    if args.gateway:
        _gateway(args.rounds, args.calls, args.processor)
    cases = ["none", "timings", "access log", "otel (simple)", "otel (batch)"]
    base = None
    print(f"{'case':<16}{'median µs':>12}{'p99 µs':>10}{'added µs':>11}")
    for case in cases:
        times = asyncio.run(_run(case, args.requests))[args.requests // 10 :]  # warm
        median = statistics.median(times) * 1e6
        p99 = statistics.quantiles(times, n=100)[98] * 1e6
        if base is None:
            base = median
        print(f"{case:<16}{median:>12.2f}{p99:>10.2f}{median - base:>11.2f}")


if __name__ == "__main__":
    main()
