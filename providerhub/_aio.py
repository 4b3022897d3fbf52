"""The asyncio face of the router: ``acreate()``, with the routing, fallback, retries and
errors of ``create()``.

providerhub's providers are synchronous generators (the seed contract), so each call runs
in a worker thread of its own, and its pieces cross to the event loop as they arrive.
Cancelling the task, or closing the stream, aborts the call: the HTTP response's socket is
shut down, the worker's blocked read returns, and the worker ends. (A provider that does
not use providerhub's transport cannot be interrupted mid-call; its worker ends when the
provider returns, and the router's deadline still bounds the wait.)
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Generator
from typing import Any, TypeVar

from . import _router as router
from ._provider import Provider
from ._transport import Abort, set_abort

__all__ = ["AsyncStream", "complete"]

T = TypeVar("T")
_DONE = object()
_QUEUE_ROOM = 256
"""Pieces the worker may run ahead of a slow reader before it waits."""


def _in_thread(target: Callable[[], None], name: str, abort: Abort) -> threading.Thread:
    def run() -> None:
        set_abort(abort)  # in the worker's own context: its HTTP exchanges can be aborted
        target()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


async def complete(call: router.Call, candidates: list[Provider]) -> str:
    """``router.complete`` in a worker thread; cancelling the awaiting task aborts it."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()
    abort = Abort()

    def work() -> None:
        try:
            text = router.complete(call, candidates)
        except BaseException as exc:
            _deliver(loop, future, None, exc)
        else:
            _deliver(loop, future, text, None)

    _in_thread(work, "providerhub-acreate", abort)
    try:
        return await future
    except asyncio.CancelledError:
        abort.abort()
        raise


def _deliver(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[T],
    value: T | None,
    error: BaseException | None,
) -> None:
    def settle() -> None:
        if future.done():
            return  # cancelled meanwhile: nobody waits for it
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)  # type: ignore[arg-type]

    try:
        loop.call_soon_threadsafe(settle)
    except RuntimeError:
        # The loop closed while the call ran: there is no one left to tell.
        return


class AsyncStream(AsyncIterator[str]):
    """The pieces of a streamed completion, for ``async for``.

    ``provider`` names the provider that answers, once the first piece is in. Use it as
    ``async with`` or call :meth:`aclose` to stop early; the worker thread is gone when
    :meth:`aclose` returns. ``await`` on it gives the stream itself, so
    ``stream = await acreate(..., stream=True)`` works too.
    """

    def __init__(self, stream: router.Stream) -> None:
        self._stream = stream
        self._abort = Abort()
        self._thread: threading.Thread | None = None
        self._queue: asyncio.Queue[tuple[Any, BaseException | None]] | None = None
        self._room = threading.Semaphore(_QUEUE_ROOM)
        self._finished = False

    @property
    def provider(self) -> str | None:
        return self._stream.provider

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

    async def __anext__(self) -> str:
        if self._finished:
            raise StopAsyncIteration
        if self._queue is None:
            self._start()
        assert self._queue is not None
        try:
            piece, error = await self._queue.get()
        except asyncio.CancelledError:
            self._cancel()
            raise
        self._room.release()
        if piece is _DONE:
            self._finished = True
            if error is not None:
                raise error
            raise StopAsyncIteration
        text: str = piece
        return text

    async def aclose(self) -> None:
        """Stop the stream, close its connection, and wait (briefly) for the worker."""
        self._cancel()
        thread = self._thread
        for _ in range(500):  # at most about 5 s: a provider outside our transport may lag
            if thread is None or not thread.is_alive():
                return
            await asyncio.sleep(0.01)

    def _cancel(self) -> None:
        self._finished = True
        self._abort.abort()
        for _ in range(_QUEUE_ROOM):  # wake a worker waiting for room
            self._room.release()

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[Any, BaseException | None]] = asyncio.Queue()
        self._queue = queue

        def send(item: tuple[Any, BaseException | None]) -> bool:
            self._room.acquire()
            if self._abort.aborted:
                return False
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:
                return False  # the loop closed: nobody reads any more
            return True

        def pump() -> None:
            try:
                for piece in self._stream:
                    if not send((piece, None)):
                        return
                send((_DONE, None))
            except BaseException as exc:
                if not self._abort.aborted:
                    send((_DONE, exc))
            finally:
                self._stream.close()

        self._thread = _in_thread(pump, "providerhub-astream", self._abort)
