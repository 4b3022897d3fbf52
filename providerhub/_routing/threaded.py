"""The asyncio face of the router: ``acreate()``, with the routing, fallback, retries and
errors of ``create()``.

providerhub's providers are synchronous generators (the seed contract), so each call runs
on a worker thread, and its pieces cross to the event loop as they arrive. The workers
are shared by the whole process, and bounded: at most :data:`MAX_WORKERS` calls run at
once; past that, a call waits its turn (first come, first served) before anything is
sent, and cancelling a waiting call takes it out of the line at once. A worker thread
with nothing left to do ends.

Cancelling the task, closing the stream, or leaving an ``async for`` early (the stream
is aborted when it is dropped) aborts the call: the breaker's claims are abandoned (a
probe is free again at once, and what the worker learns afterwards is not counted), the
socket of the call's connection is shut down, a request still waiting for its response
headers included, the worker's blocked read returns, no further request is sent, and the
worker ends, closing the socket. (A provider that does not send through the hub's session
cannot be interrupted mid-call; its worker ends when the provider returns, and the
router's deadline still bounds the wait.)
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Generator
from typing import Any, TypeVar

from .._provider import Provider
from .._transports.sync import Abort, set_abort
from ..types import Piece
from . import router
from .pump import NOTHING, Pump, Ticket, Workers

__all__ = ["MAX_WORKERS", "WORKERS", "AsyncStream", "complete"]

T = TypeVar("T")

MAX_WORKERS = 128
"""The most ``acreate()`` calls that run at once in a process (a stream runs until it is
read to its end, closed or dropped); more wait their turn."""

WORKERS = Workers(MAX_WORKERS, "providerhub-async")
"""The worker threads of every ``acreate()`` call."""

_QUEUE_ROOM = 256
"""Pieces the worker may run ahead of a slow reader before it waits."""


def _job(abort: Abort, work: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        set_abort(abort)  # in the job's own context: its HTTP exchanges can be aborted
        work()

    return run


async def complete(call: router.Call, candidates: list[Provider]) -> str:
    """``router.complete`` on a worker thread; cancelling the awaiting task aborts it."""
    return await _on_worker(lambda: router.complete(call, candidates))


async def collect(
    call: router.Call, candidates: list[Provider], sink: Callable[[Piece], None]
) -> str:
    """``router.collect`` on a worker thread; cancelling the awaiting task aborts it."""
    return await _on_worker(lambda: router.collect(call, candidates, sink))


async def _on_worker(function: Callable[[], T]) -> T:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    abort = Abort()

    def work() -> None:
        try:
            value = function()
        except BaseException as exc:
            _deliver(loop, future, None, exc)
        else:
            _deliver(loop, future, value, None)

    ticket = WORKERS.submit(_job(abort, work))
    try:
        return await future
    except asyncio.CancelledError:
        ticket.cancel()
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

    _call_soon(loop, settle)


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    try:
        loop.call_soon_threadsafe(callback)
    except RuntimeError:
        # The loop closed while the call ran: there is no one left to tell.
        return


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class AsyncStream(AsyncIterator[str]):
    """The pieces of a streamed completion, for ``async for``.

    ``provider`` names the provider that answers, once the first piece is in. Use it as
    ``async with`` or call :meth:`aclose` to stop early; the call is over (its connection
    closed, its provider's generator closed) when :meth:`aclose` returns. A stream left
    with ``break`` and dropped is aborted when it is collected. ``await`` on it gives the
    stream itself, so ``stream = await acreate(..., stream=True)`` works too.
    """

    def __init__(self, stream: router.Stream) -> None:
        self._stream = stream
        self._abort = Abort()
        self._pump: Pump[str] | None = None
        self._ticket: Ticket | None = None
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
        pump = self._pump if self._pump is not None else self._start()
        loop = asyncio.get_running_loop()
        while True:
            try:
                piece = pump.poll()
            except StopIteration:
                self._finished = True
                raise StopAsyncIteration from None
            except BaseException:
                self._finished = True
                raise
            if piece is not NOTHING:
                return piece
            arrived = loop.create_future()
            if pump.notify(functools.partial(_call_soon, loop, functools.partial(_wake, arrived))):
                try:
                    await arrived
                except asyncio.CancelledError:
                    self._cancel()
                    raise

    async def aclose(self) -> None:
        """Stop the stream, close its connection, and wait (briefly) for the worker."""
        self._cancel()
        pump = self._pump
        for _ in range(500):  # at most about 5 s: a provider outside our transport may lag
            if pump is None or pump.done.is_set():
                return
            await asyncio.sleep(0.01)

    def __del__(self) -> None:
        # ``async for ... break`` does not call aclose(): without this the worker would
        # go on reading (or wait for room) with no one left to read.
        self._cancel()

    def _cancel(self) -> None:
        self._finished = True
        self._abort.abort()
        pump, ticket = self._pump, self._ticket
        if pump is None:
            self._stream.close()  # never started: nothing runs, nothing to wait for
            return
        if ticket is not None and ticket.cancel():
            pump.abandon()  # it waited in line: it will never run, so close it here
        else:
            pump.stop()

    def _start(self) -> Pump[str]:
        # The job holds the pump and the abort, never this object: dropping the stream
        # must free it, so that __del__ stops the job.
        pump: Pump[str] = Pump(self._stream, _QUEUE_ROOM)
        self._pump = pump
        self._ticket = WORKERS.submit(_job(self._abort, pump.run))
        return pump
