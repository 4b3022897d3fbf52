"""The few steps in which the two routing loops differ, the asyncio side: each is the twin
of :mod:`providerhub._routing._io`'s of the same name without its ``a`` (``aask`` of
``ask``, ``asleep`` of ``sleep``, ...). The loop's source (:mod:`providerhub._routing._async`)
calls these, and ``scripts/unasync.py`` turns each call into its twin.

On an event loop a provider with ``_acreate_completion`` is awaited there; one without,
a synchronous generator (the seed contract), runs on one of :data:`WORKERS` for the
attempt, and only that, its pieces handed to the loop as they arrive (:class:`Pumped`).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import importlib.util
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from .._transports.abort import Abort, set_abort
from ..errors import ProviderTimeoutError
from ..types import Piece
from ._io import ask
from .pump import NOTHING, Pump, Ticket, Workers

if TYPE_CHECKING:
    from .._provider import Provider
    from .plan import Call

__all__ = [
    "ACLOSED",
    "MAX_WORKERS",
    "WORKERS",
    "Pumped",
    "aask",
    "aclose_pieces",
    "asession",
    "asleep",
    "awatched",
    "native",
]

T = TypeVar("T")

ACLOSED: tuple[type[BaseException], ...] = (GeneratorExit, asyncio.CancelledError)
"""What an asyncio stream's generator meets when the caller closes it or its task is
cancelled."""


def native(candidates: list[Provider]) -> bool:
    """Whether each of ``candidates`` is asked on the event loop itself: it has an
    ``_acreate_completion``, and aiohttp (``providerhub[server]``) is installed."""
    return _aiohttp_installed() and all(p.native for p in candidates)


def _on_loop(call: Call, p: Provider) -> bool:
    native = p.native_embeddings if call.operation == "embeddings" else p.native
    return native and _aiohttp_installed()


@functools.lru_cache(maxsize=1)
def _aiohttp_installed() -> bool:
    return importlib.util.find_spec("aiohttp") is not None


def aask(call: Call, p: Provider, extra: dict[str, Any]) -> AsyncIterator[Piece]:
    """:func:`ask` on an event loop: ``_acreate_completion`` where ``p`` has one (see
    :func:`native`), else ``_create_completion`` on a worker thread; for an embeddings
    call, ``_acreate_embedding`` or ``_create_embedding`` likewise."""
    if _on_loop(call, p):
        if call.operation == "embeddings":
            return p.aembed(call.model, **call.kwargs, **extra)
        if call.operation == "messages":
            return p.amessage(call.model, call.stream, **call.kwargs, **extra)
        return p.acomplete(call.model, call.messages, call.stream, **call.kwargs, **extra)
    # A provider that does not keep its timeouts may hang: on a thread of its own, as the
    # synchronous watchdog's, not one of the pool's.
    own_thread = None if p.honors_timeout else f"providerhub-{p.name}"
    return Pumped(lambda: ask(call, p, extra), own_thread)


async def asession(call: Call, p: Provider) -> Any:
    """:func:`session` on an event loop: the hub's ``aiohttp.ClientSession`` of the running
    loop for a provider asked there, else the ``requests.Session`` of its worker thread."""
    if not _on_loop(call, p):
        return call.session
    if call.asession is None:
        raise RuntimeError("an asyncio call needs the hub's session (Call.asession)")
    return await call.asession()


async def asleep(seconds: float) -> None:
    """:func:`sleep` on an event loop: cancelling the task ends it."""
    await asyncio.sleep(seconds)


async def aclose_pieces(pieces: AsyncIterator[Piece] | None) -> None:
    """Close a provider's pieces (a provider may return any async iterator)."""
    aclose = getattr(pieces, "aclose", None)
    if aclose is not None:
        await aclose()


async def awatched(
    pieces: AsyncIterator[Piece], provider: str, read: float, deadline: float | None
) -> AsyncGenerator[Piece, None]:
    """:func:`watched` on an event loop, where the watchdog is a timeout on each wait."""
    try:
        while True:
            wait = read
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
            try:
                piece = await asyncio.wait_for(pieces.__anext__(), max(wait, 0.0))
            except StopAsyncIteration:
                return
            except asyncio.TimeoutError:
                raise ProviderTimeoutError(
                    provider,
                    f"gave nothing for {max(wait, 0.0):.1f} s",
                    hint="the provider may be hanging; raise timeout= or try another provider",
                ) from None
            yield piece
    finally:
        await aclose_pieces(pieces)


MAX_WORKERS = 128
"""The most providers that ``acreate()`` calls run at once on worker threads in a process
(a stream runs until it is read to its end, closed or dropped); more wait their turn."""

WORKERS = Workers(MAX_WORKERS, "providerhub-async")
"""The worker threads of every ``acreate()`` call to a provider without
``_acreate_completion``."""

_ROOM = 256
"""Pieces the worker may run ahead of a slow reader before it waits."""


class Pumped(AsyncIterator[T]):
    """The items of ``make()``, an iterator made and read on one of :data:`WORKERS`,
    awaited on the event loop: an ``acreate()`` attempt at a provider that has no
    ``_acreate_completion``. The job waits its turn in line when every worker is busy;
    with ``own_thread``, it runs at once on a thread of its own by that name.

    The job runs in a context of its own with an :class:`~providerhub._transports.abort.Abort`
    as the call's: cancelling a wait for an item, or :meth:`aclose` before the end, aborts
    the attempt (the socket of its connection is shut down, a request still waiting for
    its response headers included, so the worker's blocked read returns), takes a job still
    in line out of it, and has the worker close the iterator and end.
    """

    def __init__(self, make: Callable[[], Iterator[T]], own_thread: str | None = None) -> None:
        self._pump: Pump[T] = Pump(_made(make), _ROOM)
        self._abort = Abort()
        self._stopped = False
        job = functools.partial(_aborted_by, self._abort, self._pump.run)
        self._ticket: Ticket | None = None
        if own_thread is None:
            self._ticket = WORKERS.submit(job)
            return
        # A thread of its own, named ``own_thread``, not a pooled one: for a provider that
        # does not keep its timeouts, which may hang and keep the thread (see watchdog).
        threading.Thread(
            target=contextvars.Context().run, args=(job,), name=own_thread, daemon=True
        ).start()

    def __aiter__(self) -> Pumped[T]:
        return self

    async def __anext__(self) -> T:
        pump = self._pump
        while True:
            try:
                item = pump.poll()
            except StopIteration:
                self._stopped = True  # over: nothing left to stop
                raise StopAsyncIteration from None
            except BaseException:
                self._stopped = True  # the iterator's own failure, raised once
                raise
            if item is not NOTHING:
                return item
            loop = asyncio.get_running_loop()
            arrived = loop.create_future()
            if pump.notify(functools.partial(_call_soon, loop, functools.partial(_wake, arrived))):
                try:
                    await arrived
                except asyncio.CancelledError:
                    self._stop()
                    raise

    async def aclose(self) -> None:
        """Stop, and wait (briefly) for the worker to close the iterator: at once when it
        was done, or when a cancellation stopped it already."""
        if self._stop():
            for _ in range(500):  # at most about 5 s: a provider outside our transport may lag
                if self._pump.done.is_set():
                    return
                await asyncio.sleep(0.01)

    def _stop(self) -> bool:
        """Abort the attempt unless it is over; True when the worker is still at it."""
        if self._stopped or self._pump.done.is_set():
            return False
        self._stopped = True
        self._abort.abort()
        if self._ticket is not None and self._ticket.cancel():
            self._pump.abandon()  # it waited in line: it will never run, so close it here
            return False
        self._pump.stop()
        return True


def _made(make: Callable[[], Iterator[T]]) -> Iterator[T]:
    # Made on the worker: a provider whose function does its work when called, rather
    # than when iterated, must not do it on the event loop.
    yield from make()


def _aborted_by(abort: Abort, work: Callable[[], None]) -> None:
    set_abort(abort)  # in the job's own context: its HTTP exchanges can be aborted
    work()


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    try:
        loop.call_soon_threadsafe(callback)
    except RuntimeError:
        # The loop closed while the call ran: there is no one left to tell.
        return


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
