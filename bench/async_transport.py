"""The async API's two transports, side by side: ``providerhub.AsyncClient`` over the
bounded thread pool (the synchronous router and ``requests`` on worker threads) and over
the asyncio-native path (aiohttp on the event loop), against the bench's fast server.

For each transport (and a bare aiohttp client, ``raw``, as the baseline) it prints, for
non-streamed calls and for streams of ``--pieces`` pieces, the calls per second and the
median latency with 1 and with 32 calls in flight; then whether ``--streams`` streams
(1,000 by default) held open at once all complete with every piece, and how many were
open at the same moment. Every answer is checked against
what the server sent (:mod:`protocol`). Run it from the dev environment::

    .venv/bin/python bench/async_transport.py

The thread-pool rows use Gravityengine's synchronous function alone (a copy of the
provider without ``_acreate_completion``), so both rows send the same requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import protocol

HERE = Path(__file__).resolve().parent


def start_server() -> tuple[subprocess.Popen[str], str]:
    """The bench server in its own process, and its base url."""
    server = subprocess.Popen(
        [sys.executable, str(HERE / "server.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=HERE,
    )
    assert server.stdout is not None
    line = server.stdout.readline()
    if not line.startswith("PORT "):
        raise RuntimeError(f"the bench server did not start: {line!r}")
    return server, f"http://127.0.0.1:{int(line.split()[1])}"


class SyncOnly:
    """Gravityengine without its asyncio-native function: the async API then runs its
    synchronous one on the thread pool."""

    def __init__(self, module: Any) -> None:
        for name in ("url", "model", "supports_stream", "needs_auth", "working"):
            setattr(self, name, getattr(module, name))
        self.yields_pieces = module.yields_pieces
        self.honors_timeout = module.honors_timeout
        self._create_completion = module._create_completion


def make_hub(transport: str) -> Any:
    import providerhub
    import providerhub_gravityengine as gravity

    hub = providerhub.Hub(load_entrypoints=False)
    if transport == "aiohttp":
        hub.register(gravity, name="gravityengine")
    else:
        hub.register(SyncOnly(gravity), name="gravityengine")
    return hub


class RawClient:
    """The baseline: a bare ``aiohttp.ClientSession`` posting the same bodies, reading the
    document, or the whole event stream (parsed outside the timing)."""

    def __init__(self, url: str) -> None:
        import aiohttp

        self.url = url + protocol.PATH
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    async def call(self, nonce: str, stream: bool, pieces: int) -> float:
        body = protocol.request_body(nonce, stream=stream, pieces=pieces if stream else None)
        started = time.perf_counter()
        async with self.session.post(self.url, json=body) as response:
            raw = await response.read()
        elapsed = time.perf_counter() - started
        if stream:
            text, count = protocol.parse_sse_text(raw)
            ok = text == protocol.stream_text(nonce, pieces) and count == pieces
        else:
            ok = json.loads(raw)["choices"][0]["message"]["content"] == protocol.reply_text(nonce)
        if not ok:
            raise AssertionError(f"wrong answer for {nonce}")
        return elapsed


async def one_call(client: Any, nonce: str, stream: bool, pieces: int) -> float:
    """One checked call; its latency in seconds."""
    if isinstance(client, RawClient):
        return await client.call(nonce, stream, pieces)
    messages = protocol.messages_for(nonce)
    started = time.perf_counter()
    if stream:
        got: list[str] = []
        chunks = await client.chat.completions.create(
            model=protocol.MODEL, messages=messages, stream=True, max_tokens=pieces
        )
        async for chunk in chunks:
            if chunk.choices and chunk.choices[0].delta.content:
                got.append(chunk.choices[0].delta.content)
        elapsed = time.perf_counter() - started
        text = "".join(got)
        if text != protocol.stream_text(nonce, pieces) or len(got) != pieces:
            raise AssertionError(f"wrong stream for {nonce}: {len(got)} pieces")
    else:
        r = await client.chat.completions.create(model=protocol.MODEL, messages=messages)
        elapsed = time.perf_counter() - started
        if r.choices[0].message.content != protocol.reply_text(nonce):
            raise AssertionError(f"wrong answer for {nonce}")
    return elapsed


async def load(
    client: Any, tag: str, concurrency: int, calls: int, stream: bool, pieces: int
) -> tuple[float, float]:
    """``calls`` calls, ``concurrency`` at a time: calls per second and the median
    latency in ms."""
    latencies: list[float] = []
    counter = iter(range(calls))

    async def worker() -> None:
        for index in counter:
            latencies.append(await one_call(client, f"{tag}-{index}", stream, pieces))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    return calls / wall, statistics.median(latencies) * 1000


async def many_streams(client: Any, tag: str, count: int, pieces: int) -> tuple[int, int, float]:
    """``count`` streams at once, each read slowly enough that all are open together:
    how many completed with every piece, the most open at one moment, and the seconds."""
    open_now = 0
    most = 0
    complete = 0
    gate = asyncio.Event()

    async def one(index: int) -> None:
        nonlocal open_now, most, complete
        nonce = f"{tag}-{index}"
        got: list[str] = []
        chunks = await client.chat.completions.create(
            model=protocol.MODEL,
            messages=protocol.messages_for(nonce),
            stream=True,
            max_tokens=pieces,
            timeout=120,
        )
        async for chunk in chunks:
            if chunk.choices and chunk.choices[0].delta.content:
                if not got:
                    open_now += 1
                    most = max(most, open_now)
                    if open_now == count:
                        gate.set()
                    # Hold each stream open until all are (or a while has passed).
                    try:
                        await asyncio.wait_for(gate.wait(), 10)
                    except asyncio.TimeoutError:
                        gate.set()
                got.append(chunk.choices[0].delta.content)
        open_now -= 1
        if "".join(got) == protocol.stream_text(nonce, pieces) and len(got) == pieces:
            complete += 1

    started = time.perf_counter()
    results = await asyncio.gather(*(one(i) for i in range(count)), return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        print(f"    {len(failures)} streams failed, first: {failures[0]!r}")
    return complete, most, time.perf_counter() - started


async def run(transport: str, args: argparse.Namespace) -> dict[str, Any]:
    import providerhub

    figures: dict[str, Any] = {}
    if transport == "raw":
        raw = RawClient(os.environ["PROVIDERHUB_GRAVITYENGINE_URL"])
        for stream in (False, True):
            kind = "stream" if stream else "nonstream"
            await load(raw, f"warm-raw-{kind}", 8, 200, stream, args.pieces)
            for concurrency in (1, 32):
                calls = args.calls if concurrency == 1 else args.calls * 2
                figures[f"{kind} c={concurrency}"] = await load(
                    raw, f"raw-{kind}-{concurrency}", concurrency, calls, stream, args.pieces
                )
        await raw.session.close()
        return figures
    hub = make_hub(transport)
    client = providerhub.AsyncClient(hub)
    for stream in (False, True):
        kind = "stream" if stream else "nonstream"
        await load(client, f"warm-{transport}-{kind}", 8, 200, stream, args.pieces)
        for concurrency in (1, 32):
            calls = args.calls if concurrency == 1 else args.calls * 2
            rate, p50 = await load(
                client, f"{transport}-{kind}-{concurrency}", concurrency, calls, stream, args.pieces
            )
            figures[f"{kind} c={concurrency}"] = (rate, p50)
    if args.streams:
        figures["streams"] = await many_streams(
            client, f"{transport}-many", args.streams, args.stream_pieces
        )
    await hub.aclose()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per row at 1 in flight")
    parser.add_argument("--pieces", type=int, default=16, help="pieces of each stream")
    parser.add_argument("--streams", type=int, default=1000, help="streams held open at once")
    parser.add_argument(
        "--stream-pieces",
        type=int,
        default=300,
        help="pieces of each of those streams: more than the pool's buffer (256), so a "
        "worker thread holds its stream open until it is read",
    )
    parser.add_argument("--only", choices=("raw", "threads", "aiohttp"), default=None)
    args = parser.parse_args()
    server, url = start_server()
    os.environ["PROVIDERHUB_GRAVITYENGINE_URL"] = url
    try:
        results = {}
        for transport in ("raw", "threads", "aiohttp"):
            if args.only in (None, transport):
                results[transport] = asyncio.run(run(transport, args))
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(10)
    print(f"\nAsyncClient against bench/server.py ({args.pieces}-piece streams)\n")
    print("| transport | figure | calls/s | p50 ms |")
    print("| --- | --- | --- | --- |")
    for transport, figures in results.items():
        for key, value in figures.items():
            if key == "streams":
                continue
            print(f"| {transport} | {key} | {value[0]:,.0f} | {value[1]:.2f} |")
    for transport, figures in results.items():
        if "streams" in figures:
            complete, most, seconds = figures["streams"]
            print(
                f"\n{transport}: {complete}/{args.streams} streams of {args.stream_pieces} pieces "
                f"complete and checked; at most {most} open at once; {seconds:.1f} s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
