"""The asyncio API against a real local server: same routing and errors, pieces as they
arrive, clean cancellation, no thread left behind."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Callable

import pytest

import providerhub
from providerhub.testing import OpenAIServer, Reply

MODEL = "gpt-3.5-turbo-16k"
HI = [{"role": "user", "content": "Hi"}]


def workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("providerhub-a")]


def wait_until(condition: Callable[[], bool], seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def call_over(stream: providerhub.AsyncStream) -> bool:
    """Whether the call behind ``stream`` is over: its loop's generator closed on the event
    loop, which closes the provider's generator, there (asyncio-native providers) or on
    its worker thread, before it returns."""
    return stream._pieces.ag_frame is None


def test_await_gives_the_whole_text(gravity_hub: providerhub.Hub, server: OpenAIServer) -> None:
    server.script(Reply.text("Hel", "lo"))
    assert asyncio.run(gravity_hub.acreate(MODEL, HI)) == "Hello"
    assert "stream" not in server.requests[0].json()
    assert wait_until(lambda: not workers())


def test_async_for_streams_pieces_as_they_arrive(
    gravity_hub: providerhub.Hub, server: OpenAIServer
) -> None:
    release = threading.Event()
    server.script(Reply.text("first", " second", " third", wait=release, after=1))

    async def main() -> list[str]:
        got = []
        stream = gravity_hub.acreate(MODEL, HI, stream=True, timeout=10)
        async for piece in stream:
            got.append(piece)
            if piece == "first":
                assert not release.is_set()  # the server still holds the rest
                assert stream.provider == "gravityengine"
                release.set()
        return got

    assert asyncio.run(main()) == ["first", " second", " third"]
    assert wait_until(lambda: not workers())


def test_awaiting_a_stream_gives_the_stream(
    gravity_hub: providerhub.Hub, server: OpenAIServer
) -> None:
    server.script(Reply.text("a", "b"))

    async def main() -> list[str]:
        stream = await gravity_hub.acreate(MODEL, HI, stream=True)
        return [piece async for piece in stream]

    assert asyncio.run(main()) == ["a", "b"]


def test_bad_input_raises_at_the_call_before_any_await(
    gravity_hub: providerhub.Hub, server: OpenAIServer
) -> None:
    with pytest.raises(providerhub.InvalidRequestError):
        gravity_hub.acreate(MODEL, [{"role": "user"}])
    with pytest.raises(providerhub.ModelNotFoundError):
        gravity_hub.acreate("no-such-model", HI, stream=True)
    assert server.requests == []


def test_errors_and_fallback_are_those_of_create(
    hub: providerhub.Hub, fake: Callable[..., Any]
) -> None:
    hub.register(fake("down", ["m"], fail=providerhub.ProviderConnectionError("down", "no")))
    hub.register(fake("up", ["m"], ["fine"]))

    async def main() -> tuple[str, list[str]]:
        text = await hub.acreate("m", HI)
        pieces = [p async for p in hub.acreate("m", HI, stream=True)]
        return text, pieces

    assert asyncio.run(main()) == ("fine", ["fine"])
    hub.unregister("up")
    with pytest.raises(providerhub.ProviderConnectionError):
        asyncio.run(hub.acreate("m", HI))
    # Its third failure in a row cooled "down" off; the stream is for the error it gives.
    hub.health.reset("down")

    async def stream_failure() -> None:
        async for _ in hub.acreate("m", HI, stream=True):
            pass

    with pytest.raises(providerhub.ProviderConnectionError):
        asyncio.run(stream_failure())


def test_cancelling_a_stream_closes_the_response_and_ends_the_worker(
    gravity_hub: providerhub.Hub, server: OpenAIServer
) -> None:
    release = threading.Event()
    server.script(Reply.text("first", " never", wait=release, after=1))
    first_seen = asyncio.Event

    async def main() -> None:
        seen = first_seen()

        async def consume() -> None:
            async for _piece in gravity_hub.acreate(MODEL, HI, stream=True, timeout=30):
                seen.set()

        task = asyncio.create_task(consume())
        await seen.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    started = time.monotonic()
    asyncio.run(main())
    assert wait_until(lambda: not workers(), 2.0), "the worker thread outlived the task"
    assert time.monotonic() - started < 3
    release.set()  # the server now writes to a connection the client closed
    assert wait_until(lambda: bool(server.errors), 3.0)


def test_aclose_ends_the_call_before_it_returns(
    gravity_hub: providerhub.Hub, server: OpenAIServer
) -> None:
    release = threading.Event()
    server.script(Reply.text("first", " never", wait=release, after=1))

    async def main() -> str:
        async with gravity_hub.acreate(MODEL, HI, stream=True, timeout=30) as stream:
            piece = await stream.__anext__()
        assert call_over(stream)  # the provider's generator is closed
        # Its pooled thread, with no job left, ends a moment later.
        assert wait_until(lambda: not workers(), 1.0)
        return piece

    assert asyncio.run(main()) == "first"
    release.set()


def test_cancelling_a_non_stream_call_leaves_no_thread_behind(
    gravity_hub: providerhub.Hub, server: OpenAIServer
) -> None:
    server.script(Reply(fault="stall", after=None, delay=10))

    async def main() -> None:
        task = asyncio.create_task(
            gravity_hub.acreate(MODEL, HI, timeout=providerhub.Timeout(1, 0.5))
        )
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    # The request had no response yet to close: the worker ends with its read timeout.
    assert wait_until(lambda: not workers(), 2.0)


def test_module_level_acreate_uses_the_default_hub(
    monkeypatch: pytest.MonkeyPatch, fake: Callable[..., Any]
) -> None:
    from ._internals import hub_module

    own = providerhub.Hub(load_entrypoints=False)
    own.register(fake("default-one", ["m"], ["x", "y"]))
    monkeypatch.setattr(hub_module, "_default_hub", own)

    async def main() -> tuple[str, list[str]]:
        return await providerhub.acreate("m", HI), [
            p async for p in providerhub.acreate("m", HI, stream=True)
        ]

    assert asyncio.run(main()) == ("xy", ["x", "y"])
    assert isinstance(providerhub.acreate("m", HI, stream=True), providerhub.AsyncStream)
