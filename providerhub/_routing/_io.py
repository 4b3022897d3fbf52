"""The few steps in which the two routing loops differ, the synchronous side: asking a
provider for its pieces and with which session, waiting before a retry, closing the
pieces, watching a provider that does not keep its timeouts, and what closing a stream
raises in it. :mod:`providerhub._routing._aio` has the asyncio side, name for name
(``aask`` for ``ask``, ``asleep`` for ``sleep``, ...): the loop's source
(:mod:`providerhub._routing._async`) calls those, and ``scripts/unasync.py`` turns each
call into one of these for :mod:`providerhub._routing._sync`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..types import Piece
from .watchdog import Watched

if TYPE_CHECKING:
    from .._provider import Provider
    from .plan import Call

__all__ = ["CLOSED", "ask", "close_pieces", "session", "sleep", "watched"]

CLOSED: tuple[type[BaseException], ...] = (GeneratorExit,)
"""What a synchronous stream's generator meets when the caller closes it."""


def ask(call: Call, p: Provider, extra: dict[str, Any]) -> Iterator[Piece]:
    """``p``'s pieces for ``call``, with ``extra`` (see ``Call.provider_kwargs``): its
    completion, or for an embeddings call its vectors (``call.operation``)."""
    if call.operation == "embeddings":
        return p.embed(call.model, **call.kwargs, **extra)
    if call.operation == "messages":
        # The gateway's pass-through, served on the event loop (_aio.aask) alone.
        raise RuntimeError(f"{p.name}: a request passed through needs the asyncio path")
    return p.complete(call.model, call.messages, call.stream, **call.kwargs, **extra)


def session(call: Call, p: Provider) -> Any:
    """The session ``p`` is given: the hub's ``requests.Session``."""
    return call.session


def sleep(seconds: float) -> None:
    """Wait ``seconds`` before a retry."""
    time.sleep(seconds)


def close_pieces(pieces: Iterator[Piece] | None) -> None:
    """Close a provider's pieces (a provider may return any iterator)."""
    close = getattr(pieces, "close", None)
    if close is not None:
        close()


def watched(
    pieces: Iterator[Piece], provider: str, read: float, deadline: float | None
) -> Iterator[Piece]:
    """``pieces`` fetched on a worker thread, each waited for no longer than ``read``
    seconds, nor past ``deadline`` (:class:`~providerhub._routing.watchdog.Watched`)."""
    return Watched(pieces, provider, read, deadline)
