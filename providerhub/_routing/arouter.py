"""``acreate()``'s entry to the routing loop: :func:`complete`, :func:`collect`, and which
stream a call gets.

The loop is :mod:`providerhub._routing._async` (the one source, from which the loop of
``create()`` is generated), its decisions :class:`providerhub._routing.plan.Call`'s. It
runs on the event loop; a provider with an asyncio-native completion function
(``_acreate_completion``) is awaited there, with no worker thread and no buffer between it
and the caller, one without on a worker thread (see :mod:`providerhub._routing.threaded`).
Cancellation is the task's: a ``CancelledError`` closes the provider's pieces (and its
HTTP response) and gives back the breaker's probe, as ``close()`` does in the synchronous
loop.
"""

from __future__ import annotations

from ._aio import native
from ._async import acollect as collect
from ._async import acomplete as complete
from .threaded import AsyncStream

__all__ = ["AsyncStream", "NativeStream", "collect", "complete", "native"]


class NativeStream(AsyncStream):
    """An :class:`~providerhub._routing.threaded.AsyncStream` whose every candidate is
    asyncio-native (see :func:`native`): served on the event loop alone, no worker thread."""
