"""Connections a call's :class:`~providerhub._transports.abort.Abort` can cut at any point of the
exchange, waiting for the response's headers included.

An aborted call registers its response with its abort (see
:meth:`~providerhub._transports.abort.Abort.register`) once the headers are in; before that,
``requests`` shows no response, and a worker thread blocked on a server that has not
answered yet would wait out its read timeout. So the hub's sessions send through an
adapter whose connections tell the abort of the calling thread about themselves as each
request starts on them (:meth:`~providerhub._transports.abort.Abort.watch`), and shut their socket
down if the call was aborted while they connected; the pool forgets them again
(:meth:`~providerhub._transports.abort.Abort.unwatch`) before it lends them to another call.
Imported, with ``requests``, when the first session is made.
"""

from __future__ import annotations

import threading
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool as _Pool
from urllib3.poolmanager import pool_classes_by_scheme as _DEFAULT_POOLS

from .abort import Abort, current_abort, shutdown_socket

__all__ = ["AbortableAdapter"]


class _Watched:
    """What the connections below add to urllib3's: the abort of the call using them."""

    providerhub_abort: Abort | None = None
    sock: Any

    def request(self, *args: Any, **kwargs: Any) -> None:
        abort = current_abort()
        if abort is not None:
            abort.watch(self)
        super().request(*args, **kwargs)  # type: ignore[misc]

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        abort = self.providerhub_abort
        if abort is not None and abort.aborted:
            # Aborted while this connected, when there was no socket to shut down yet.
            shutdown_socket(self.sock)


class _Connection(_Watched, HTTPConnection):
    pass


class _TLSConnection(_Watched, HTTPSConnection):
    pass


def _forget(conn: Any) -> None:
    abort = getattr(conn, "providerhub_abort", None)
    if abort is not None:
        abort.unwatch(conn)


_GIVING_BACK = threading.Lock()


def _give_back(pool: _Pool, conn: Any, put: Any) -> None:
    """Put ``conn`` back in ``pool`` once. An aborted stream's response may be closed by
    the thread that aborts it while the worker reading it closes it too; each gives the
    connection back, and twice in the pool it would be lent to two calls at once (which
    ``http.client`` meets as ``ResponseNotReady``)."""
    _forget(conn)  # before another call can take it
    with _GIVING_BACK:
        waiting = getattr(pool.pool, "queue", None)
        if conn is not None and waiting is not None and any(c is conn for c in waiting):
            return
        put(conn)


class _ConnectionPool(HTTPConnectionPool):
    ConnectionCls = _Connection

    def _put_conn(self, conn: Any) -> None:
        _give_back(self, conn, super()._put_conn)


class _TLSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _TLSConnection

    def _put_conn(self, conn: Any) -> None:
        _give_back(self, conn, super()._put_conn)


_POOLS: dict[str, type[_Pool]] = {"http": _ConnectionPool, "https": _TLSConnectionPool}


class AbortableAdapter(HTTPAdapter):
    """``requests``' adapter, with the connections above (a SOCKS proxy's are its own)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if manager.pool_classes_by_scheme is _DEFAULT_POOLS:
            manager.pool_classes_by_scheme = _POOLS
        return manager
