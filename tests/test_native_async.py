"""The asyncio-native path (``_acreate_completion`` over aiohttp) against a real local
server: the same answers, errors, retries, deadlines and breaker as the thread pool, no
worker thread, and every way a call ends closes its connection, counted in sockets."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from urllib3.util import Retry

import providerhub
from providerhub.testing import FakeClock, OpenAIServer, Reply

from ._internals import NativeStream, achat_completion, aio
from ._support import Endpoint, await_until, sockets, threads, wait_until

# The server extra's packages; the Python 3.9 run of .ci/run installs the core's tests only.
pytest.importorskip("aiohttp")

MODEL = "gpt-3.5-turbo-16k"
HI = [{"role": "user", "content": "Hi"}]
LONG = Reply.text(*[f"w{i} " for i in range(2000)], chunk_delay=0.005)
"""About 10 s of text: nobody reads it to its end."""
SECRET = "sk-native-secret-0123456789"


def native_hub(server: OpenAIServer, monkeypatch: pytest.MonkeyPatch, **options: Any) -> Any:
    import providerhub_gravityengine

    monkeypatch.setenv("PROVIDERHUB_GRAVITYENGINE_URL", server.url)
    options.setdefault("retries", 0)
    hub = providerhub.Hub(load_entrypoints=False, **options)
    hub.register_plugin(providerhub_gravityengine, name="gravityengine")
    return hub


@pytest.fixture
def hub(server: OpenAIServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[providerhub.Hub]:
    with native_hub(server, monkeypatch) as h:
        yield h


def providerhub_threads() -> list[threading.Thread]:
    """The threads a call could run on: the pool's workers, Gravityengine's watchdog (the
    local server's own threads, one per connection, are not counted)."""
    names = {aio.WORKERS.name, "providerhub-gravityengine"}
    return [t for t in threading.enumerate() if t.name in names]


def back_to(baseline: tuple[set[threading.Thread], int]) -> bool:
    before, open_sockets = baseline
    return threads() <= before and sockets() <= open_sockets


def test_native_calls_give_what_the_pool_gives_without_a_thread(
    hub: providerhub.Hub, server: OpenAIServer
) -> None:
    server.script(Reply.text("Hel", "lo"), Reply.text("a", "b"))

    async def main() -> tuple[str, list[str], bool]:
        text = await hub.acreate(MODEL, HI)
        stream = hub.acreate(MODEL, HI, stream=True)
        pieces = [p async for p in stream]
        return text, pieces, isinstance(stream, NativeStream) and not providerhub_threads()

    assert asyncio.run(main()) == ("Hello", ["a", "b"], True)
    assert [r.json().get("stream") for r in server.requests] == [None, True]
    assert server.requests[0].json()["temperature"] == 0.7  # the plugin's defaults


def test_a_call_with_a_provider_that_is_not_native_goes_to_the_pool(
    hub: providerhub.Hub, server: OpenAIServer
) -> None:
    hub.register(Endpoint("plain", server))
    server.script(Reply.text("x"))

    async def main() -> tuple[bool, list[str]]:
        stream = hub.acreate(MODEL, HI, stream=True, provider=["gravityengine", "plain"])
        return isinstance(stream, NativeStream), [p async for p in stream]

    assert asyncio.run(main()) == (False, ["x"])


def test_cancelling_a_native_stream_closes_its_connection(
    hub: providerhub.Hub, server: OpenAIServer
) -> None:
    server.default = LONG

    async def main() -> None:
        baseline = threads(), sockets()
        seen = asyncio.Event()

        async def consume() -> None:
            async for _ in hub.acreate(MODEL, HI, stream=True, timeout=30):
                seen.set()

        task = asyncio.create_task(consume())
        await seen.wait()
        assert sockets() > baseline[1]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await await_until(lambda: back_to(baseline)), "a connection outlived the task"

    asyncio.run(main())
    assert len(server.requests) == 1
    assert "gravityengine" not in hub.health.snapshot()  # not the provider's failure


def test_async_for_loops_left_with_break_close_their_connections(
    hub: providerhub.Hub, server: OpenAIServer
) -> None:
    server.default = LONG

    async def main() -> None:
        baseline = threads(), sockets()
        for _ in range(5):
            async for piece in hub.acreate(MODEL, HI, stream=True, timeout=10):
                assert piece == "w0 "
                break
        assert await await_until(lambda: back_to(baseline))

    asyncio.run(main())
    assert len(server.requests) == 5


def test_aclose_closes_the_connection_and_a_whole_answer_pools_it(
    hub: providerhub.Hub, server: OpenAIServer
) -> None:
    server.script(LONG, Reply.text("a", "b"), Reply.text("c"))

    async def main() -> None:
        baseline = sockets()
        async with hub.acreate(MODEL, HI, stream=True, timeout=10) as stream:
            assert await stream.__anext__() == "w0 "
        assert isinstance(stream, NativeStream) and stream._pieces.ag_frame is None
        assert await await_until(lambda: sockets() <= baseline)
        assert [p async for p in hub.acreate(MODEL, HI, stream=True)] == ["a", "b"]
        pooled = sockets()
        assert pooled > baseline  # kept alive for the next call
        assert await hub.acreate(MODEL, HI) == "c"
        assert sockets() == pooled  # which reused it

    asyncio.run(main())


def test_a_cancelled_probe_is_given_back(server: OpenAIServer, monkeypatch: Any) -> None:
    clock = FakeClock()
    state = providerhub.MemoryState(clock=clock)
    with native_hub(server, monkeypatch, failure_threshold=1, cooldown=30, state=state) as hub:
        server.script(Reply.error(500))
        with pytest.raises(providerhub.ProviderHTTPError):
            asyncio.run(hub.acreate(MODEL, HI))
        clock.advance(30)  # the cooldown's length: the next call is the probe
        server.default = LONG

        async def main() -> None:
            seen = asyncio.Event()

            async def consume() -> None:
                async for _ in hub.acreate(MODEL, HI, stream=True, timeout=30):
                    seen.set()

            task = asyncio.create_task(consume())
            await seen.wait()
            assert hub.health.snapshot()["gravityengine"].probing
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())
        assert not hub.health.snapshot()["gravityengine"].probing
        server.default = Reply.text("back")
        assert asyncio.run(hub.acreate(MODEL, HI)) == "back"  # the next call probes
        assert "gravityengine" not in {
            name for name, state in hub.health.snapshot().items() if state.failures
        }


def test_transient_failures_are_retried_with_asyncio_sleep(
    server: OpenAIServer, monkeypatch: Any
) -> None:
    retries = Retry(total=2, backoff_factor=0, allowed_methods=None)
    with native_hub(server, monkeypatch, retries=retries) as hub:
        server.script(Reply.error(503), Reply(fault="reset", after=None), Reply.text("ok"))
        assert asyncio.run(hub.acreate(MODEL, HI)) == "ok"
        assert len(server.requests) == 3
        server.script(Reply.error(400))
        with pytest.raises(providerhub.ProviderHTTPError) as caught:
            asyncio.run(hub.acreate(MODEL, HI))
        assert caught.value.status_code == 400 and len(server.requests) == 4  # not retried


def test_a_cancelled_call_wakes_from_its_backoff_at_once(
    server: OpenAIServer, monkeypatch: Any
) -> None:
    retries = Retry(total=2, backoff_factor=0, allowed_methods=None)
    with native_hub(server, monkeypatch, retries=retries, retry_after_max=60) as hub:
        server.default = Reply.error(503, retry_after="30")

        async def main() -> None:
            task = asyncio.create_task(hub.acreate(MODEL, HI, timeout=60))
            assert await await_until(lambda: len(server.requests) == 1)
            await asyncio.sleep(0.05)
            started = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert time.monotonic() - started < 0.5  # not the 30 s Retry-After

        asyncio.run(main())
        assert len(server.requests) == 1


@pytest.mark.slow  # waits out two timeouts
def test_the_total_timeout_cuts_a_slow_stream_and_a_stalled_request(
    hub: providerhub.Hub, server: OpenAIServer
) -> None:
    server.script(
        Reply.text(*["x"] * 100, chunk_delay=0.05), Reply(fault="stall", after=None, delay=3)
    )

    async def slow_stream() -> list[str]:
        return [p async for p in hub.acreate(MODEL, HI, stream=True, timeout=0.4)]

    started = time.monotonic()
    with pytest.raises(providerhub.ProviderTimeoutError, match="total timeout"):
        asyncio.run(slow_stream())
    assert time.monotonic() - started < 1.5
    started = time.monotonic()
    with pytest.raises(providerhub.ProviderTimeoutError, match="gravityengine"):
        asyncio.run(hub.acreate(MODEL, HI, timeout=providerhub.Timeout(1, 0.3)))
    assert time.monotonic() - started < 1.5


def test_errors_are_typed_name_the_provider_and_hold_no_credential(
    hub: providerhub.Hub, server: OpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.script(
        Reply.error(401, f"bad key {SECRET}"),
        Reply(status=302, headers={"Location": "http://elsewhere.invalid/"}, chunks=[]),
        Reply.html(),
        Reply(fault="cut", after=1, chunks=["a", "b"]),
    )
    auth = {"gravityengine": SECRET}
    found = []
    for expected, stream in (
        (providerhub.AuthenticationError, False),
        (providerhub.ProviderHTTPError, False),
        (providerhub.ProviderResponseError, False),
        (providerhub.StreamInterruptedError, True),
    ):

        async def call(stream: bool = stream) -> None:
            if stream:
                async for _ in hub.acreate(MODEL, HI, stream=True, auth=auth):
                    pass
            else:
                await hub.acreate(MODEL, HI, auth=auth)

        with pytest.raises(expected) as caught:
            asyncio.run(call())
        found.append(caught.value)
        # The 401 cools the lone provider down, and a call would be refused unsent: each
        # call here is for the error it gets from the provider.
        hub.health.reset()
    assert server.requests[0].headers["Authorization"] == f"Bearer {SECRET}"
    assert "elsewhere.invalid" in str(found[1]) and len(server.requests) == 4
    for err in found:
        assert err.provider == "gravityengine"
        assert SECRET not in str(err) and SECRET not in repr(err)
    assert SECRET not in caplog.text


def test_a_refused_connection_is_a_connection_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import providerhub_gravityengine

    monkeypatch.setenv("PROVIDERHUB_GRAVITYENGINE_URL", "http://127.0.0.1:9")
    with providerhub.Hub(load_entrypoints=False, retries=0) as hub:
        hub.register_plugin(providerhub_gravityengine, name="gravityengine")
        with pytest.raises(providerhub.ProviderConnectionError, match="connection refused"):
            asyncio.run(hub.acreate(MODEL, HI))


def test_achat_completion_checks_its_arguments_before_anything_is_sent(
    server: OpenAIServer,
) -> None:
    url = server.url + "/v1/chat/completions"
    with pytest.raises(providerhub.InvalidRequestError, match="temprature"):
        achat_completion("p", url, "m", HI, False, temprature=1)
    with pytest.raises(providerhub.InvalidRequestError, match="non-empty"):
        achat_completion("p", url, "m", HI, False, auth="")
    with pytest.raises(providerhub.InvalidRequestError, match="JSON"):
        achat_completion("p", url, "m", HI, False, stop={1, 2})
    assert server.requests == []


def test_achat_completion_without_a_session_opens_and_closes_its_own(
    server: OpenAIServer,
) -> None:
    server.script(Reply.text("a", "b"), Reply.text("c"))
    url = server.url + "/v1/chat/completions"

    async def main() -> tuple[list[Any], list[Any]]:
        baseline = sockets()
        streamed = [p async for p in achat_completion("p", url, "m", HI, True, structured=True)]
        whole = [p async for p in achat_completion("p", url, "m", HI, False)]
        assert await await_until(lambda: sockets() <= baseline)
        return streamed, whole

    streamed, whole = asyncio.run(main())
    assert streamed[:2] == ["a", "b"] and type(streamed[-1]).__name__ == "Finish"
    assert whole == ["c"]


def _chunk(event: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(event), event)


class OneSend:
    """A server of one stream answer, sent in one ``sendall``: the role event, a first
    piece, then an event too large for the reader; it holds the connection until the
    client closes it."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1/chat/completions"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            found = re.search(rb"(?i)content-length: *(\d+)", head)
            assert found is not None
            length = int(found.group(1))
            while len(body) < length:
                body += conn.recv(65536)
            events = [
                b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n',
                b'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n',
                b"data: " + b"x" * 3000 + b"\n\n",
            ]
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n" + b"".join(_chunk(e) for e in events)
            )
            while conn.recv(65536):
                pass  # until the client closes

    def close(self) -> None:
        self.sock.close()
        self.thread.join(5)


def test_the_first_piece_is_passed_on_before_what_came_with_it_is_read() -> None:
    # The first piece is the time to the first token: it goes on as soon as its own chunk
    # is read, not once everything that arrived with it is parsed (here, an event too
    # large to read, which fails the stream only after the first piece).
    server = OneSend()
    baseline = threads(), sockets()

    async def main() -> tuple[Any, str]:
        pieces = achat_completion("p", server.url, "m", HI, True, max_event_bytes=1000)
        first = await pieces.__anext__()
        with pytest.raises(providerhub.ProviderResponseError, match="larger than 1000 bytes"):
            await pieces.__anext__()
        return first, "failed after it"

    try:
        assert asyncio.run(main()) == ("Hi", "failed after it")
        server.thread.join(5)
        assert not server.thread.is_alive()  # the client closed its connection
    finally:
        server.close()
    assert wait_until(lambda: back_to(baseline))


def test_the_session_closes_with_its_loop_and_with_the_hub(
    hub: providerhub.Hub, server: OpenAIServer
) -> None:
    server.default = Reply.text("x")
    baseline = sockets()
    assert asyncio.run(hub.acreate(MODEL, HI)) == "x"
    assert wait_until(lambda: sockets() <= baseline)  # closed as asyncio.run ended

    async def main() -> None:
        baseline = sockets()  # the loop's own self-pipe is a pair of sockets
        assert await hub.acreate(MODEL, HI) == "x"
        assert sockets() > baseline
        await hub.aclose()
        assert await await_until(lambda: sockets() <= baseline)
        assert await hub.acreate(MODEL, HI) == "x"  # usable again: a new session

    asyncio.run(main())
    assert wait_until(lambda: sockets() <= baseline)
