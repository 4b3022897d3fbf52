"""Deadlines for providers that do not keep them.

A provider built on providerhub's transport honours the ``timeout`` it is given. A module
written to the bare seed contract may call the network with no timeout at all; the router
then drives its generator from a worker thread and waits for each piece no longer than the
deadline allows. A provider that hangs costs its caller a :class:`ProviderTimeoutError`,
not the program; the worker thread ends when the provider's code returns.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

from .errors import ProviderTimeoutError

__all__ = ["Watched"]

_DONE = object()


class Watched(Iterator[Any]):
    """``pieces``, fetched in a worker thread; each ``next()`` waits at most ``read``
    seconds, and never past ``deadline`` (a ``time.monotonic()`` value, or None)."""

    def __init__(
        self, pieces: Iterator[Any], provider: str, read: float, deadline: float | None
    ) -> None:
        self._provider = provider
        self._read = read
        self._deadline = deadline
        self._queue: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(maxsize=64)
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(
            target=self._pump, args=(pieces,), name=f"providerhub-{provider}", daemon=True
        )
        self._thread.start()

    def _pump(self, pieces: Iterator[Any]) -> None:
        try:
            for piece in pieces:
                if self._stop.is_set():
                    break
                self._queue.put((piece, None))
            else:
                self._queue.put((_DONE, None))
        except BaseException as exc:
            # Handed to the consumer, which raises it as the provider's failure.
            self._queue.put((_DONE, exc))
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()

    def __next__(self) -> Any:
        if self._finished:
            raise StopIteration
        wait = self._read
        if self._deadline is not None:
            wait = min(wait, self._deadline - time.monotonic())
        try:
            piece, error = self._queue.get(timeout=max(wait, 0.0))
        except queue.Empty:
            self.close()
            raise ProviderTimeoutError(
                self._provider,
                f"gave nothing for {max(wait, 0.0):.1f} s",
                hint="the provider may be hanging; raise timeout= or try another provider",
            ) from None
        if piece is _DONE:
            self._finished = True
            if error is not None:
                raise error
            raise StopIteration
        return piece

    def close(self) -> None:
        """Stop fetching. The worker notices after its current piece; it cannot be
        interrupted mid-call, so it is a daemon thread."""
        self._finished = True
        self._stop.set()
        # Make room, so a worker blocked on a full queue can see the stop flag.
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
