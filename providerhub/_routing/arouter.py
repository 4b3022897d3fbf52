"""``acreate()``'s face of the routing loop: :func:`complete`, :func:`collect`, and
:class:`AsyncStream`, the stream a streamed ``acreate()`` gives.

The loop (:mod:`providerhub._routing._async`, the one source, from which the loop of
``create()`` is generated; its decisions :class:`providerhub._routing.plan.Call`'s) runs on
the event loop. A provider with an asyncio-native ``_acreate_completion`` is awaited there,
with no worker thread and no buffer between it and the caller; one without, a synchronous
generator (the seed contract), runs on a worker thread for each attempt, and its pieces
cross to the event loop as they arrive (:class:`~providerhub._routing._aio.Pumped`). The
workers are shared by the whole process, and bounded: at most
:data:`~providerhub._routing._aio.MAX_WORKERS` such attempts run at once; past that, one
waits its turn (first come, first served) before anything is sent, and cancelling a
waiting call takes it out of the line at once. A worker thread with nothing left to do
ends.

Cancelling the task, closing the stream, or leaving an ``async for`` early (the stream is
closed when it is dropped) ends the call: the breaker's claim is given back at once, the
socket of the attempt's connection is shut down, a request still waiting for its response
headers included, the worker's blocked read returns, no further request is sent, and the
worker ends, closing the socket. (A provider that does not send through the hub's session
cannot be interrupted mid-call; its worker ends when the provider returns, and what it
returns then is not counted.)
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Generator
from typing import Any

from .._provider import Provider
from ._aio import native
from ._async import acollect as collect
from ._async import acomplete as complete
from ._async import astream
from .plan import Answer, Call

__all__ = ["AsyncStream", "NativeStream", "collect", "complete", "native"]


class AsyncStream(AsyncIterator[str]):
    """The pieces of a streamed completion, for ``async for``.

    ``provider`` names the provider that answers, once the first piece is in. Use it as
    ``async with`` or call :meth:`aclose` to stop early; the call is over (its connection
    closed, its provider's generator closed) when :meth:`aclose` returns. Cancelling the
    task that reads it stops it at once; a stream left with ``break`` and dropped is
    closed by asyncio's finalizer of async generators, on the loop, a moment later.
    ``await`` on it gives the stream itself, so ``stream = await acreate(..., stream=True)``
    works too.
    """

    def __init__(self, call: Call, candidates: list[Provider]) -> None:
        self._answer = Answer()
        self._pieces: AsyncGenerator[Any, None] = astream(call, candidates, self._answer)
        self._finished = False
        self.next_piece: Callable[[], Awaitable[Any]] = self._pieces.__anext__
        """The loop's generator's own ``__anext__``, for a reader that wraps the stream
        (the client's chunks): :meth:`__anext__` without its layer on each piece. Past the
        end, a failure or :meth:`aclose`, it raises ``StopAsyncIteration``, as
        :meth:`__anext__` does."""

    @property
    def provider(self) -> str | None:
        return self._answer.provider

    def __aiter__(self) -> AsyncStream:
        return self

    def __await__(self) -> Generator[Any, None, AsyncStream]:
        return self._itself().__await__()

    async def _itself(self) -> AsyncStream:
        return self

    async def __aenter__(self) -> AsyncStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

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


class NativeStream(AsyncStream):
    """An :class:`AsyncStream` whose every candidate is
    asyncio-native (see :func:`native`): served on the event loop alone, no worker thread."""
