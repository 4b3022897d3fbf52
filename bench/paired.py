"""providerhub against raw ``requests`` call by call, in one process: figures 2 and 3 of
``run.py`` measured by interleaving, for when fresh processes cannot tell them apart.

``run.py`` measures each figure in fresh processes, one client at a time; on a small
machine shared with other work, where the scheduler puts each process (on the server's
core or the other) moves a non-streamed call's latency by more than providerhub's share
of it, and three or seven rounds do not average that out. Here both clients live in one
process and take turns call by call (the order flipped every call), against one bench
server, so that whatever the machine does meanwhile falls on both alike; each call's
process CPU time is recorded too, which the machine's load moves less than its latency.
Every answer is checked, as ``run.py`` checks them::

    .venv/bin/python bench/paired.py                 # 2,000 non-streamed calls, 200 streams
    .venv/bin/python bench/paired.py --calls 5000 --streams 400 --pieces 5000

Prints, for each figure, the medians of both clients, the ratio (providerhub / raw for
latency, raw / providerhub's time for a stream, so above 1 is faster), and the CPU time
per call.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import clients  # noqa: E402
import protocol  # noqa: E402


def _pair(
    calls: int, first: Callable[[int], None], second: Callable[[int], None]
) -> tuple[list[float], list[float], float, float]:
    """Each function called ``calls`` times, taking turns, the order flipped every call:
    the latencies (µs) of each and their CPU time per call (µs)."""
    times: tuple[list[float], list[float]] = ([], [])
    cpu = [0.0, 0.0]
    for i in range(calls):
        order = ((0, first), (1, second)) if i % 2 else ((1, second), (0, first))
        for index, call in order:
            c0 = time.process_time()
            t0 = time.perf_counter_ns()
            call(i)
            times[index].append((time.perf_counter_ns() - t0) / 1000)
            cpu[index] += time.process_time() - c0
    return times[0], times[1], cpu[0] / calls * 1e6, cpu[1] / calls * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="non-streamed calls of each")
    parser.add_argument("--streams", type=int, default=200, help="streams of each")
    parser.add_argument("--pieces", type=int, default=1000, help="pieces of each stream")
    args = parser.parse_args()

    server = subprocess.Popen(
        [sys.executable, str(HERE / "server.py")], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert server.stdout is not None
    base = f"http://127.0.0.1:{int(server.stdout.readline().split()[1])}"
    ours = clients.make("providerhub", base)
    raw = clients.make("requests", base)
    pid = os.getpid()
    try:
        for client in (ours, raw):  # warm: connections, imports, caches
            for i in range(100):
                nonce = protocol.nonce_for(pid, i)
                assert client.nonstream(nonce) == protocol.reply_text(nonce)

        def nonstream(client: clients.Client) -> Callable[[int], None]:
            def call(i: int) -> None:
                nonce = protocol.nonce_for(pid, 1000 + i)
                if client.nonstream(nonce) != protocol.reply_text(nonce):
                    raise AssertionError("a wrong answer")

            return call

        def stream(client: clients.Client) -> Callable[[int], None]:
            def call(i: int) -> None:
                nonce = protocol.nonce_for(pid, 10**6 + i)
                text, count = client.stream(nonce, args.pieces)
                if text != protocol.stream_text(nonce, args.pieces) or count != args.pieces:
                    raise AssertionError("a wrong stream")

            return call

        ph, rq, ph_cpu, rq_cpu = _pair(args.calls, nonstream(ours), nonstream(raw))
        p, r = statistics.median(ph), statistics.median(rq)
        print(
            f"non-stream, {args.calls} calls each: providerhub {p:,.1f} µs, raw requests "
            f"{r:,.1f} µs (medians), {p / r:.3f}x ({p - r:+,.1f} µs); CPU a call "
            f"{ph_cpu:,.0f} against {rq_cpu:,.0f} µs"
        )
        ph, rq, ph_cpu, rq_cpu = _pair(args.streams, stream(ours), stream(raw))
        p, r = statistics.median(ph), statistics.median(rq)
        rate = args.pieces / p * 1e6
        print(
            f"stream of {args.pieces:,} pieces, {args.streams} each: providerhub "
            f"{rate / 1000:,.1f}k chunks/s, raw requests {args.pieces / r * 1e3:,.1f}k "
            f"chunks/s (medians), {r / p:.2f}x; CPU a chunk {ph_cpu / args.pieces:,.2f} "
            f"against {rq_cpu / args.pieces:,.2f} µs"
        )
    finally:
        ours.close()
        raw.close()
        if server.stdin is not None:
            server.stdin.close()
        server.wait(15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
