"""Deadlines for providers that do not keep them.

A provider built on providerhub's transport honours the ``timeout`` it is given. A module
written to the bare seed contract may call the network with no timeout at all; the router
then drives its generator from a worker thread (a :class:`~providerhub._routing.pump.Pump`) and
waits for each piece no longer than the deadline allows. A provider that hangs costs its
caller a :class:`ProviderTimeoutError`, not the program; the worker thread ends when the
provider's code returns.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Iterator
from typing import Any

from ..errors import ProviderTimeoutError
from .pump import NOTHING, Pump

__all__ = ["Watched"]

_ROOM = 64
"""Pieces the worker may fetch ahead of the reader."""


class Watched(Iterator[Any]):
    """``pieces``, fetched in a worker thread; each ``next()`` waits at most ``read``
    seconds, and never past ``deadline`` (a ``time.monotonic()`` value, or None).

    The worker runs in a copy of the caller's context. (Under ``acreate()`` the watchdog is
    a timeout on each wait of the event loop, see :func:`providerhub._routing._aio.awatched`.)
    """

    def __init__(
        self, pieces: Iterator[Any], provider: str, read: float, deadline: float | None
    ) -> None:
        self._provider = provider
        self._read = read
        self._deadline = deadline
        self._pump: Pump[Any] = Pump(pieces, _ROOM)
        # A thread of its own, not a pooled one: a hanging provider keeps it, and nothing
        # can take it back.
        threading.Thread(
            target=contextvars.copy_context().run,
            args=(self._pump.run,),
            name=f"providerhub-{provider}",
            daemon=True,
        ).start()

    def __next__(self) -> Any:
        wait = self._read
        if self._deadline is not None:
            wait = min(wait, self._deadline - time.monotonic())
        piece = self._pump.get(max(wait, 0.0))
        if piece is NOTHING:
            self.close()
            raise ProviderTimeoutError(
                self._provider,
                f"gave nothing for {max(wait, 0.0):.1f} s",
                hint="the provider may be hanging; raise timeout= or try another provider",
            )
        return piece

    def close(self) -> None:
        """Stop fetching. The worker stops after its current piece and closes the
        provider's generator; it cannot be interrupted mid-call, so it is a daemon
        thread."""
        self._pump.stop()
