"""Cutting a call short from another thread: the :class:`Abort` a call's worker thread
carries, and the sockets it shuts down.

The asyncio loop, which runs a provider without an asyncio twin on a worker thread
(:mod:`providerhub._routing._aio`), sets one for that thread; the driver
(:mod:`providerhub._http.chat`) registers each response with it, and the hub's sessions
(:mod:`providerhub._transports.abortable`) tell it of each connection in use. Nothing here
imports ``requests``.
"""

from __future__ import annotations

import logging
import math
import socket
import threading
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import requests

__all__ = [
    "Abort",
    "body_socket",
    "current_abort",
    "set_abort",
    "shutdown_socket",
]

logger = logging.getLogger("providerhub.transport")


class Abort:
    """Lets another thread cut a call's HTTP exchanges short.

    The asyncio loop runs the generator of a provider without an asyncio twin on a worker
    thread; when its task is cancelled it calls :meth:`abort`, which shuts down the sockets
    of the connections the generator is using (:meth:`watch`: the hub's sessions tell it of
    each, see :mod:`providerhub._transports.abortable`) and of the responses registered so
    far, so the worker's blocked read returns at once, even one still waiting for the
    response's headers, and the worker ends, closing the sockets. The loop itself gives
    back the breaker's claim, on the event loop.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._responses: list[requests.Response] = []
        self._connections: list[Any] = []
        self._event = threading.Event()

    @property
    def aborted(self) -> bool:
        return self._event.is_set()

    def register(self, response: requests.Response) -> None:
        with self._lock:
            if not self._event.is_set():
                self._responses.append(response)
                return
        _shutdown(response)

    def watch(self, connection: Any) -> None:
        """The call is sending a request on ``connection`` (a urllib3 connection, whose
        ``sock`` may not be connected yet): :meth:`abort` shuts its socket down, until
        :meth:`unwatch`."""
        with self._lock:
            connection.providerhub_abort = self
            if not self._event.is_set():
                self._connections.append(connection)
                return
        shutdown_socket(connection.sock)

    def unwatch(self, connection: Any) -> None:
        """The call is done with ``connection``, which may now serve another call."""
        with self._lock:
            connection.providerhub_abort = None
            if connection in self._connections:
                self._connections.remove(connection)

    def abort(self) -> None:
        with self._lock:
            self._event.set()
            responses, self._responses = self._responses, []
            connections, self._connections = self._connections, []
            # Under the lock: a connection given back to its pool (unwatch) could be lent
            # to another call the moment after, and its socket is not this call's to cut.
            for connection in connections:
                shutdown_socket(connection.sock)
        for response in responses:
            _shutdown(response)


_ABORT: ContextVar[Abort | None] = ContextVar("providerhub_abort", default=None)


def current_abort() -> Abort | None:
    """The :class:`Abort` of the call running in this thread, if anyone can cancel it."""
    return _ABORT.get()


def set_abort(abort: Abort) -> None:
    """Make ``abort`` the one of the calls this thread makes from now on."""
    _ABORT.set(abort)


def _shutdown(response: requests.Response) -> None:
    sock, _ = body_socket(response)
    if sock is None:
        response.close()  # not mid-read on a socket we can reach: closing is enough
        return
    shutdown_socket(sock)


def shutdown_socket(sock: Any) -> None:
    """Shut ``sock`` down both ways (nothing for None), so that a thread blocked reading
    or writing it returns at once; whoever uses it closes it. For a TLS socket, the plain
    socket's shutdown: ``ssl``'s own would unset the TLS object under the reading thread."""
    if sock is None:
        return
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except (OSError, TypeError):
        # Already closed or reset by the peer (or no plain socket): either way no reader
        # is blocked on it.
        logger.debug("a socket was already closed")


def body_socket(response: requests.Response) -> tuple[Any, float]:
    """The socket ``response``'s body arrives on (None where urllib3 does not show it), and
    its read timeout now (infinite when it has none)."""
    sock = getattr(getattr(response.raw, "connection", None), "sock", None)
    if sock is None or not hasattr(sock, "settimeout"):
        return None, math.inf
    timeout = sock.gettimeout()
    return sock, math.inf if timeout is None else timeout
