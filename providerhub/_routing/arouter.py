"""``acreate()``'s face of the routing loop for providers with an asyncio-native completion
function (``_acreate_completion``): the loop runs on the event loop itself, no worker
thread, no buffer between the provider and the caller.

The loop is :mod:`providerhub._routing._async` (the one source, from which the loop of
``create()`` is generated), its decisions :class:`providerhub._routing.plan.Call`'s.
Cancellation is the task's: a ``CancelledError`` closes the provider's generator (and its
HTTP response) and gives back the breaker's probe, as ``close()`` does in the synchronous
loop.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from .._provider import Provider
from ._async import acollect as collect
from ._async import acomplete as complete
from ._async import astream
from .plan import Answer, Call
from .threaded import AsyncStream

__all__ = ["NativeStream", "collect", "complete", "native"]


def native(candidates: list[Provider]) -> bool:
    """Whether the asyncio-native path can serve a call to ``candidates``: each has an
    ``_acreate_completion``, and aiohttp (``providerhub[server]``) is installed."""
    return all(p.native for p in candidates) and _aiohttp_installed()


_installed: list[bool] = []


def _aiohttp_installed() -> bool:
    if not _installed:
        import importlib.util

        _installed.append(importlib.util.find_spec("aiohttp") is not None)
    return _installed[0]


class NativeStream(AsyncStream):
    """An :class:`~providerhub._routing.threaded.AsyncStream` served on the event loop itself.

    Closing it (:meth:`aclose`, ``async with``) closes the provider's generator and its
    HTTP response before it returns; cancelling the task that reads it does so at once;
    a stream left with ``break`` and dropped is closed by asyncio's finalizer of async
    generators, on the loop, a moment later."""

    def __init__(self, call: Call, candidates: list[Provider]) -> None:
        self._answer = Answer()
        self._pieces: AsyncGenerator[Any, None] = astream(call, candidates, self._answer)
        self._finished = False

    @property
    def provider(self) -> str | None:
        return self._answer.provider

    async def __anext__(self) -> Any:
        if self._finished:
            raise StopAsyncIteration
        try:
            return await self._pieces.__anext__()
        except BaseException:
            self._finished = True
            raise

    async def aclose(self) -> None:
        """Stop the stream: its connection is closed and its claim given back."""
        self._finished = True
        await self._pieces.aclose()

    def __del__(self) -> None:
        # Nothing to do here: a generator that started is closed by asyncio's finalizer,
        # one that never started holds nothing.
        return
