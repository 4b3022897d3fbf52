"""The few steps in which the two routing loops differ, each written for both: waiting
before a retry, the session an attempt is given, closing a provider's pieces, watching a
provider that does not keep its timeouts, and what closing a stream raises in it.

The loop itself (:mod:`providerhub._routing._async`, and :mod:`providerhub._routing._sync`
generated from it) calls the asyncio names; ``scripts/unasync.py`` turns each into its
synchronous twin here (``asleep`` into ``sleep``, ...). A synchronous call may run on a
worker thread for ``acreate()`` (:mod:`providerhub._routing.threaded`): there the call's
:class:`~providerhub._transports.sync.Abort` cuts its waits short. On an event loop the
task's cancellation does that.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from .._transports import sync as transport
from ..errors import ProviderTimeoutError
from ..types import Piece
from .watchdog import Watched

if TYPE_CHECKING:
    from .plan import Call

__all__ = [
    "ACLOSED",
    "CLOSED",
    "aclose_pieces",
    "asession",
    "asleep",
    "awatched",
    "close_pieces",
    "session",
    "sleep",
    "watched",
]

CLOSED: tuple[type[BaseException], ...] = (GeneratorExit,)
"""What a synchronous stream's generator meets when the caller closes it."""

ACLOSED: tuple[type[BaseException], ...] = (GeneratorExit, asyncio.CancelledError)
"""What an asyncio stream's generator meets when the caller closes it or its task is
cancelled."""


def sleep(seconds: float, abort: transport.Abort | None) -> None:
    """Wait ``seconds`` before a retry; raises
    :class:`~providerhub._transports.sync.CallAborted` at once if the call is aborted."""
    if abort is None:
        time.sleep(seconds)
    elif abort.wait(seconds):
        raise transport.CallAborted from None


async def asleep(seconds: float, abort: transport.Abort | None) -> None:
    """:func:`sleep` on an event loop: cancelling the task ends it (``abort`` is a worker
    thread's, None here)."""
    await asyncio.sleep(seconds)


def session(call: Call) -> Any:
    """The hub's ``requests.Session``, for every attempt of ``call``."""
    return call.session


async def asession(call: Call) -> Any:
    """The hub's ``aiohttp.ClientSession`` of the running event loop."""
    if call.asession is None:
        raise RuntimeError("an asyncio call needs the hub's session (Call.asession)")
    return await call.asession()


def close_pieces(pieces: Iterator[Piece] | None) -> None:
    """Close a provider's pieces (a provider may return any iterator)."""
    close = getattr(pieces, "close", None)
    if close is not None:
        close()


async def aclose_pieces(pieces: AsyncIterator[Piece] | None) -> None:
    """Close a provider's pieces (a provider may return any async iterator)."""
    aclose = getattr(pieces, "aclose", None)
    if aclose is not None:
        await aclose()


def watched(
    pieces: Iterator[Piece], provider: str, read: float, deadline: float | None
) -> Iterator[Piece]:
    """``pieces`` fetched on a worker thread, each waited for no longer than ``read``
    seconds, nor past ``deadline`` (:class:`~providerhub._routing.watchdog.Watched`)."""
    return Watched(pieces, provider, read, deadline)


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
