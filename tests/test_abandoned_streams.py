"""Streams the caller drops, leaves or cancels: their connections close and their workers
end within a second, counted in threads and open sockets; a cancelled call sends no
further request; the asyncio workers are bounded."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from urllib3.util import Retry

import providerhub
from providerhub.testing import OpenAIServer, Reply

from ._internals import Workers, abortable, aio
from ._support import Endpoint, await_until, sockets, threads, wait_until

MODEL = "gpt-3.5-turbo-16k"
HI = [{"role": "user", "content": "Hi"}]
LONG = Reply.text(*[f"w{i} " for i in range(2000)], chunk_delay=0.005)
"""About 10 s of text: nobody reads it to its end."""


@pytest.fixture
def hub(server: OpenAIServer) -> Iterator[providerhub.Hub]:
    with providerhub.Hub(load_entrypoints=False, retries=0) as h:
        h.register(Endpoint("p1", server))
        yield h


def back_to(baseline: tuple[set[threading.Thread], int]) -> bool:
    """No thread beyond the baseline's, and no more open sockets than it had."""
    before, open_sockets = baseline
    return threads() <= before and sockets() <= open_sockets


def async_workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == aio.WORKERS.name]


# -- sync ----------------------------------------------------------------------------------


def test_a_sync_stream_dropped_unfinished_closes_its_connection(
    hub: providerhub.Hub, server: OpenAIServer
) -> None:
    server.default = LONG
    baseline = threads(), sockets()
    stream = hub.create(MODEL, HI, stream=True, timeout=10)
    assert next(stream) == "w0 "
    assert sockets() > baseline[1]
    del stream
    assert wait_until(lambda: back_to(baseline)), "a connection or thread outlived the stream"
    assert server.errors  # the server saw the client hang up mid-answer


def test_a_sync_stream_left_with_break_closes_its_connection(
    hub: providerhub.Hub, server: OpenAIServer
) -> None:
    server.default = LONG
    baseline = threads(), sockets()
    for piece in hub.create(MODEL, HI, stream=True, timeout=10):
        assert piece == "w0 "
        break
    assert wait_until(lambda: back_to(baseline))


def test_a_dropped_stream_of_a_provider_under_the_watchdog_ends_its_worker(
    hub: providerhub.Hub,
) -> None:
    class Endless:
        """A seed-contract provider (no timeouts kept), that never stops talking."""

        url = "http://endless.invalid"
        model = ["m"]
        supports_stream = True
        needs_auth = False

        def _create_completion(self, model: str, messages: Any, stream: bool, **kw: Any) -> Any:
            while True:
                time.sleep(0.002)
                yield "more "

    hub.register(Endless(), name="endless")
    baseline = threads(), sockets()
    stream = hub.create("m", HI, stream=True, timeout=10)
    assert next(stream) == "more "
    assert threads() > baseline[0]  # the watchdog's worker
    del stream
    assert wait_until(lambda: back_to(baseline))


def test_a_stream_is_its_own_iterator(hub: providerhub.Hub, server: OpenAIServer) -> None:
    server.script(Reply.text("a", "b", "c"))
    stream = hub.create(MODEL, HI, stream=True)
    assert iter(stream) is stream
    assert next(stream) == "a"
    assert list(stream) == ["b", "c"]  # for, list() and next() advance the same stream


# -- async ---------------------------------------------------------------------------------


def test_five_async_for_loops_left_with_break_leave_no_worker_or_connection(
    hub: providerhub.Hub, server: OpenAIServer
) -> None:
    server.default = LONG

    async def main() -> None:
        # Inside the loop: its own self-pipe is a pair of sockets.
        baseline = threads(), sockets()
        for _ in range(5):
            async for piece in hub.acreate(MODEL, HI, stream=True, timeout=10):
                assert piece == "w0 "
                break
        # The loop keeps running: nothing waits for these streams to be closed.
        assert await await_until(lambda: back_to(baseline)), (
            f"{len(async_workers())} workers, {sockets() - baseline[1]} sockets left"
        )

    asyncio.run(main())
    assert len(server.requests) == 5


def test_an_async_stream_dropped_after_its_first_piece_is_aborted(
    hub: providerhub.Hub, server: OpenAIServer
) -> None:
    server.default = LONG

    async def main() -> None:
        # Inside the loop: its own self-pipe is a pair of sockets.
        baseline = threads(), sockets()
        stream = hub.acreate(MODEL, HI, stream=True, timeout=10)
        assert await stream.__anext__() == "w0 "
        assert async_workers()
        del stream
        assert await await_until(lambda: back_to(baseline))

    asyncio.run(main())


def test_a_cancelled_acreate_sends_no_further_request(server: OpenAIServer) -> None:
    server.default = Reply(fault="stall", after=None, delay=3)  # no headers for 3 s
    retries = Retry(total=2, backoff_factor=0, allowed_methods=None)
    with providerhub.Hub(load_entrypoints=False, retries=retries) as hub:
        hub.register(Endpoint("p1", server))

        async def main() -> None:
            task = asyncio.create_task(hub.acreate(MODEL, HI, timeout=providerhub.Timeout(1, 0.2)))
            assert await await_until(lambda: len(server.requests) == 1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # The request in flight ends with its read timeout; the retry loop sees the
            # abort and stops there.
            assert await await_until(lambda: not async_workers())

        asyncio.run(main())
        assert len(server.requests) == 1
        assert "p1" not in hub.health.snapshot()  # an abort is not the provider's failure


def test_a_cancelled_acreate_wakes_from_its_backoff_at_once(server: OpenAIServer) -> None:
    server.default = Reply.error(503)
    retries = Retry(total=2, backoff_factor=0, allowed_methods=None)
    with providerhub.Hub(load_entrypoints=False, retries=retries, retry_after_max=60) as hub:
        hub.register(Endpoint("p1", server))
        server.default = Reply.error(503, retry_after="30")

        async def main() -> None:
            task = asyncio.create_task(hub.acreate(MODEL, HI, timeout=60))
            assert await await_until(lambda: len(server.requests) == 1)
            task.cancel()
            started = time.monotonic()
            assert await await_until(lambda: not async_workers())
            assert time.monotonic() - started < 0.5  # not the 30 s Retry-After

        asyncio.run(main())
        assert len(server.requests) == 1


def test_a_worker_thread_serves_only_the_provider_not_the_backoff(server: OpenAIServer) -> None:
    # The routing loop runs on the event loop; a provider without _acreate_completion has a
    # worker thread for its attempt alone: none is held while the call waits to retry.
    retries = Retry(total=1, backoff_factor=0, allowed_methods=None)
    with providerhub.Hub(load_entrypoints=False, retries=retries, retry_after_max=60) as hub:
        hub.register(Endpoint("p1", server))
        server.script(Reply.error(503, retry_after="1"), Reply.text("after the wait"))

        async def main() -> str:
            task = asyncio.create_task(hub.acreate(MODEL, HI, timeout=30))
            assert await await_until(lambda: len(server.requests) == 1)
            assert await await_until(lambda: not async_workers())  # waiting, on the loop
            assert not task.done() and len(server.requests) == 1
            return await task

        assert asyncio.run(main()) == "after the wait"
        assert len(server.requests) == 2


# -- the bound on asyncio's workers --------------------------------------------------------


def test_calls_past_the_bound_wait_their_turn_and_a_waiting_one_cancels_at_once(
    hub: providerhub.Hub, server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aio.WORKERS, "limit", 1)
    server.script(LONG, Reply.text("second"))

    async def main() -> None:
        # Inside the loop: its own self-pipe is a pair of sockets.
        baseline = threads(), sockets()
        first = hub.acreate(MODEL, HI, stream=True, timeout=10)
        assert await first.__anext__() == "w0 "  # holds the one worker
        waiting = asyncio.create_task(hub.acreate(MODEL, HI, timeout=10))
        assert await await_until(lambda: aio.WORKERS.waiting == 1)
        assert len(async_workers()) == 1 and len(server.requests) == 1
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert aio.WORKERS.waiting == 0  # out of the line at once
        await first.aclose()
        assert await await_until(lambda: back_to(baseline))
        # A call queued behind a running one runs when it ends.
        first = hub.acreate(MODEL, HI, stream=True, timeout=10)
        queued = asyncio.create_task(hub.acreate(MODEL, HI, timeout=10))
        assert [p async for p in first] == ["second"]
        assert "You said: Hi" in await queued

    asyncio.run(main())
    assert len(server.requests) == 3  # the cancelled call never sent its request


def test_workers_run_at_most_their_limit_and_end_when_idle() -> None:
    pool = Workers(2, "providerhub-test-workers")
    gate = threading.Event()
    ran: list[int] = []

    def job(number: int) -> Any:
        def run() -> None:
            gate.wait(5)
            ran.append(number)

        return run

    tickets = [pool.submit(job(n)) for n in range(4)]
    mine = lambda: [t for t in threading.enumerate() if t.name == pool.name]  # noqa: E731
    assert len(mine()) == 2 and pool.waiting == 2
    assert [t.state for t in tickets] == ["running", "running", "waiting", "waiting"]
    assert tickets[3].cancel() and not tickets[0].cancel()
    gate.set()
    assert wait_until(lambda: not mine())
    assert sorted(ran) == [0, 1, 2]
    assert [t.state for t in tickets] == ["done", "done", "done", "cancelled"]


def test_a_connection_given_back_twice_is_lent_to_one_call_only() -> None:
    # An aborted stream's response can be closed by the aborting thread and by its worker,
    # each giving the connection back: in the pool twice, it was lent to two calls at once
    # (http.client's ResponseNotReady).
    pool = abortable._ConnectionPool("127.0.0.1", 9, maxsize=2)
    try:
        conn, other = pool._get_conn(), pool._get_conn()  # the pool has room for both
        pool._put_conn(conn)
        pool._put_conn(conn)
        first, second = pool._get_conn(), pool._get_conn()
        assert first is conn
        assert second is not conn
        pool._put_conn(other)
    finally:
        pool.close()
