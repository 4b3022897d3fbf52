"""A lean HTTP/1.1 client for plain ``http://`` upstreams reached without a proxy: an
``asyncio.Protocol`` over httptools' response parser, keep-alive connections pooled per
origin, and one loop timer per call for its deadline and its read timeout.

:class:`LeanTransport` is the :class:`~providerhub._transports.aio.AsyncTransport` of a
hub's session (:func:`providerhub._transports.aio.transport_for`, :func:`attach`): plain
http without a proxy goes through its :class:`Pool`, https and proxies through aiohttp.
Its failures are plain exceptions that
:func:`providerhub._transports.errors.error_for_exception` maps as it maps aiohttp's:
``TimeoutError`` (:class:`ConnectTimeout` while connecting), ``ConnectionError``
(refused, reset, closed mid-answer; :class:`ProtocolError` for an answer that is not
HTTP/1.1 or passes the head's limits) and :class:`RequestError` (a request that cannot be
sent as it is).

A connection goes back to the pool only once its whole answer is in; a response closed
before that (an error, a cancellation, an early ``aclose``) closes its connection.
"""

from __future__ import annotations

import asyncio
import functools
import time
import weakref
import zlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .._timeout import Timeout
from . import sync as transport

if TYPE_CHECKING:
    from .aio import AsyncResponse, AsyncTransport

__all__ = [
    "DRAIN_SECONDS",
    "MAX_HEAD_BYTES",
    "ConnectTimeout",
    "LeanTransport",
    "Pool",
    "ProtocolError",
    "RequestError",
    "attach",
    "available",
    "detach",
    "pool_for",
]

MAX_HEAD_BYTES = 64 * 1024
"""The most bytes an answer's status line and headers may take (http.client's limit on
one header line, and its 100 headers, are of the same order)."""

DRAIN_SECONDS = 1.0
"""How long :meth:`Response.release` waits for the end of a body whose caller has what it
needs (the stream's ``[DONE]``), so that the connection goes back to the pool."""

KEEPALIVE_SECONDS = 15.0
"""How long a connection waits in the pool for its next call before it is closed
(aiohttp's default): a burst of streams leaves no thousand sockets open for good."""

MAX_IDLE = 1024
"""The most idle connections kept to one origin; more are closed as they come back."""

_HIGH_WATER = 256 * 1024
_LOW_WATER = 64 * 1024
"""Bytes of body read but not yet taken at which reading pauses, and resumes: a slow
reader of a long stream does not make the gateway hold all of it."""


class ConnectTimeout(TimeoutError):
    """No connection within the connect timeout."""


class ProtocolError(ConnectionError):
    """An answer that is not the HTTP/1.1 it should be, or whose head passes
    :data:`MAX_HEAD_BYTES`."""


class RequestError(ValueError):
    """A request that cannot be sent as it is (a line break in a header)."""


@functools.lru_cache(maxsize=1)
def available() -> bool:
    """Whether httptools (uvicorn's ``standard`` extra, part of ``providerhub[server]``)
    is installed: without it, every call goes through aiohttp."""
    try:
        import httptools  # noqa: F401
    except ImportError:
        return False
    return True


_pools: weakref.WeakKeyDictionary[Any, Pool] = weakref.WeakKeyDictionary()


def attach(session: Any) -> Pool:
    """Give ``session`` (a hub's aiohttp session) a pool of lean connections, closed by
    :func:`detach` when the session is."""
    pool = _pools.get(session)
    if pool is None:
        pool = _pools[session] = Pool()
    return pool


def pool_for(session: Any) -> Pool | None:
    """The pool :func:`attach` gave ``session``, if any."""
    return _pools.get(session)


def detach(session: Any) -> None:
    """Close the pool of ``session``'s idle connections (on the loop they belong to)."""
    pool = _pools.pop(session, None)
    if pool is not None:
        pool.close()


@functools.lru_cache(maxsize=256)
def _target(url: str) -> tuple[str, int, bytes]:
    """Host, port and the request line's start and ``Host`` header of ``url``."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or 80
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    netloc = parts.netloc.rpartition("@")[2]  # never the user info
    if any(c in path or c in netloc for c in " \r\n"):
        raise RequestError("a space or line break in the url")
    head = f"POST {path} HTTP/1.1\r\nHost: {netloc}\r\n".encode("latin-1")
    return host, port, head


@functools.lru_cache(maxsize=256)
def _header_lines(items: tuple[tuple[str, str], ...]) -> bytes:
    # A provider sends the same few headers on every call: encoded once per set.
    lines = []
    for name, value in items:
        if any(c in name or c in value for c in "\r\n\0") or ":" in name:
            raise RequestError(f"the header {name[:40]!r} holds a line break or a colon")
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode("utf-8")


class Pool:
    """Idle keep-alive connections, by origin, of one event loop."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self.closed = False
        self._sweep: asyncio.TimerHandle | None = None

    def _take(self, origin: tuple[str, int]) -> _Connection | None:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if conn.usable():
                return conn
        return None

    def _give_back(self, conn: _Connection) -> None:
        idle = self._idle.setdefault(conn.origin, [])
        if self.closed or len(idle) >= MAX_IDLE:
            conn.transport.close()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)
        if self._sweep is None:
            # One timer for the pool, not one per connection or call.
            self._sweep = conn.loop.call_later(KEEPALIVE_SECONDS, self._close_stale)

    def _close_stale(self) -> None:
        """Close the connections idle for :data:`KEEPALIVE_SECONDS`; come back for the
        others when theirs is up."""
        self._sweep = None
        now = time.monotonic()
        first = None
        for idle in self._idle.values():
            kept = []
            for conn in idle:  # the oldest first: given back in order
                if not conn.usable():
                    continue
                if now - conn.idle_since >= KEEPALIVE_SECONDS:
                    conn.transport.close()
                else:
                    kept.append(conn)
                    first = conn.idle_since if first is None else min(first, conn.idle_since)
            idle[:] = kept
        if first is not None and not self.closed:
            loop = asyncio.get_running_loop()
            self._sweep = loop.call_later(first + KEEPALIVE_SECONDS - now, self._close_stale)

    def idle(self) -> int:
        """How many connections wait for a call."""
        return sum(1 for conns in self._idle.values() for c in conns if c.usable())

    def close(self) -> None:
        """Close every idle connection; those in use close when their answers end."""
        self.closed = True
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                loop = conn.loop
                if loop.is_closed():
                    continue
                try:
                    running = asyncio.get_running_loop()
                except RuntimeError:
                    running = None
                if running is loop or not loop.is_running():
                    conn.transport.close()
                else:
                    loop.call_soon_threadsafe(conn.transport.close)


class LeanTransport:
    """:class:`~providerhub._transports.aio.AsyncTransport` over a :class:`Pool` for plain
    ``http://`` urls that ``proxy_for`` sends direct, over ``fallback`` (aiohttp) for the
    rest. Redirects are those of :func:`providerhub._transports.sync.post`: a 307 or 308
    within the origin is followed, up to
    :data:`~providerhub._transports.sync.MAX_REDIRECTS` times, anything else is an
    error."""

    __slots__ = ("fallback", "pool", "proxy_for")

    def __init__(
        self,
        pool: Pool,
        fallback: AsyncTransport,
        proxy_for: Callable[[str], str | None],
    ) -> None:
        self.pool = pool
        self.fallback = fallback
        self.proxy_for = proxy_for

    async def send(
        self, provider: str, request: transport.Outgoing, limits: Timeout, deadline: float | None
    ) -> AsyncResponse:
        url = request.url
        if request.method != "POST" or not url.startswith("http://") or self.proxy_for(url):
            return await self.fallback.send(provider, request, limits, deadline)
        body, headers = request.body, request.headers
        asked = url
        for _ in range(transport.MAX_REDIRECTS + 1):
            response = await post(self.pool, url, body, headers, limits[0], limits[1], deadline)
            location = response.headers.get("location")
            if response.status not in _REDIRECTS or not location:
                return response
            response.close()
            url = transport.redirect_target(
                provider, response.status, response.reason, url, location, asked
            )
        raise transport.too_many_redirects(provider, response.status, response.url, url)


_REDIRECTS = frozenset({301, 302, 303, 307, 308})


async def post(
    pool: Pool,
    url: str,
    data: bytes,
    headers: Mapping[str, str],
    connect: float,
    read: float,
    deadline: float | None,
) -> Response:
    """Send ``data`` to ``url`` and wait for the answer's head; its body is read from the
    :class:`Response`. ``connect`` and ``read`` are seconds (``read``: the longest wait
    for any bytes of the answer), ``deadline`` a ``time.monotonic()`` by which all of it,
    body included, must be in."""
    host, port, start = _target(url)
    lines = _header_lines(tuple(headers.items()))
    request = b"%sContent-Length: %d\r\n%s\r\n" % (start, len(data), lines)
    origin = (host, port)
    conn = pool._take(origin)
    if conn is None:
        wait = connect
        if deadline is not None:
            wait = min(wait, max(deadline - time.monotonic(), 0.0))
        loop = asyncio.get_running_loop()
        try:
            _, made = await asyncio.wait_for(
                loop.create_connection(lambda: _Connection(loop, pool, origin), host, port),
                wait,
            )
        except asyncio.TimeoutError:
            raise ConnectTimeout(f"no connection to {host}:{port} within {wait:.3g} s") from None
        conn = made
    response = Response(conn, url)
    try:
        conn.send(response, request + data if len(data) < 65536 else None, request, data)
        conn.arm(read, deadline)
        await conn.head
    except BaseException:
        response.close()
        raise
    return response


class _Headers(dict[str, str]):
    """An answer's headers, their names lower-cased; ``get`` takes any case."""

    def get(self, name: str, default: Any = None) -> Any:
        return dict.get(self, name.lower(), default)


class _Connection(asyncio.Protocol):
    """One keep-alive connection: it parses the answer to the request in flight into its
    :class:`Response`, and goes back to its pool once that answer is whole."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pool: Pool, origin: tuple[str, int]):
        import httptools

        self.loop = loop
        self.pool = pool
        self.origin = origin
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.parser = httptools.HttpResponseParser(self)
        self.response: Response | None = None
        self.head: asyncio.Future[None] = loop.create_future()
        self.lost = False
        self.paused = False
        self.head_bytes = 0
        self.timer: asyncio.TimerHandle | None = None
        self.read = 0.0
        self.deadline: float | None = None
        self.last = 0.0
        self.until_close = False
        self.headers = _Headers()
        self.decompress: Any = None
        self.idle_since = 0.0

    # -- the call's side ---------------------------------------------------------------

    def usable(self) -> bool:
        return not self.lost and not self.transport.is_closing()

    def send(self, response: Response, whole: bytes | None, request: bytes, data: bytes) -> None:
        # The parser goes on from the end of the last answer: a connection is reused only
        # after a whole one.
        self.response = response
        if self.head.done():
            self.head = self.loop.create_future()
        self.head_bytes = 0
        self.headers = _Headers()
        self.until_close = False
        self.decompress = None
        if whole is not None:
            self.transport.write(whole)
        else:
            self.transport.writelines((request, data))

    def arm(self, read: float, deadline: float | None) -> None:
        """One timer for the call: at the deadline, or once ``read`` seconds passed with
        no bytes (looked at when it fires, and set again for the rest)."""
        self.read = read
        self.deadline = deadline
        now = self.last = time.monotonic()
        wait = read if deadline is None else min(read, deadline - now)
        self.timer = self.loop.call_later(max(wait, 0.0), self._check)

    def _check(self) -> None:
        self.timer = None
        response = self.response
        if response is None:
            return
        now = time.monotonic()
        deadline = self.deadline
        if deadline is not None and now >= deadline:
            self._fail(TimeoutError("the call's deadline passed"))
            return
        quiet = now - self.last
        if quiet >= self.read and not self.paused:
            self._fail(TimeoutError(f"no bytes from the server for {self.read:.3g} s"))
            return
        wait = self.read - quiet if not self.paused else self.read
        if deadline is not None:
            wait = min(wait, deadline - now)
        self.timer = self.loop.call_later(max(wait, 0.0), self._check)

    def _fail(self, exc: BaseException) -> None:
        response = self.response
        self._end_call()
        self.transport.abort()
        if response is not None:
            response._fail(exc)
        if not self.head.done():
            self.head.set_exception(exc)
            self.head.exception()  # retrieved: a call cancelled meanwhile never reads it

    def _end_call(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.response = None

    def abandon(self) -> None:
        """The response was closed before its end: this connection is not reused."""
        self._end_call()
        self.transport.abort()

    def taken(self, size: int) -> None:
        if self.paused and size <= _LOW_WATER:
            self.paused = False
            self.last = time.monotonic()
            self.transport.resume_reading()

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.response is None:
            self.transport.abort()  # bytes nobody asked for: this connection is done
            self.lost = True
            return
        self.last = time.monotonic()
        if not self.head.done():
            self.head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except Exception as exc:
            self._fail(ProtocolError(f"not an HTTP/1.1 answer ({type(exc).__name__}: {exc})"))
            return
        if not self.head.done() and self.head_bytes > MAX_HEAD_BYTES:
            self._fail(ProtocolError(f"the answer's head passes {MAX_HEAD_BYTES} bytes"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        response = self.response
        if response is None:
            return
        if self.until_close and exc is None and self.head.done():
            self._end_call()
            response._complete()
            return
        self._fail(ConnectionResetError("the connection closed before the whole answer"))

    def pause_writing(self) -> None:
        pass  # a request is written once, whole

    def resume_writing(self) -> None:
        pass

    # -- httptools' callbacks ------------------------------------------------------------

    def on_status(self, status: bytes) -> None:
        assert self.response is not None
        self.response.reason = status.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        response = self.response
        assert response is not None
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            return  # an interim answer; the real one follows
        response.status = status
        response.headers = headers = self.headers
        self.until_close = (
            "content-length" not in headers
            and "chunked" not in headers.get("transfer-encoding", "").lower()
            and status not in (204, 304)
        )
        coding = headers.get("content-encoding", "identity").lower()
        if coding in ("gzip", "x-gzip"):
            self.decompress = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif coding == "deflate":
            self.decompress = zlib.decompressobj()
        if not self.head.done():
            self.head.set_result(None)

    def on_body(self, body: bytes) -> None:
        response = self.response
        assert response is not None
        if self.decompress is not None:
            body = self.decompress.decompress(body)
            if not body:
                return
        response._data(body)
        if response.buffered >= _HIGH_WATER and not self.paused:
            self.paused = True
            self.transport.pause_reading()

    def on_message_complete(self) -> None:
        response = self.response
        if response is None or response.status < 200:
            return
        keep = self.parser.should_keep_alive() and not self.until_close
        self._end_call()
        response._complete()
        if keep and not self.paused:
            self.pool._give_back(self)
        else:
            self.transport.close()


class Response:
    """The answer to one :func:`post`, an
    :class:`~providerhub._transports.aio.AsyncResponse`: its head, and its body as it
    arrives."""

    __slots__ = (
        "_conn",
        "_error",
        "_parts",
        "_waiter",
        "buffered",
        "done",
        "headers",
        "reason",
        "status",
        "url",
    )

    def __init__(self, conn: _Connection, url: str) -> None:
        self._conn: _Connection | None = conn
        self.url = url
        self.status = 0
        self.reason = ""
        self.headers = _Headers()
        self._parts: deque[bytes] = deque()
        self.buffered = 0
        self.done = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None

    # -- the connection's side -----------------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _data(self, data: bytes) -> None:
        self._parts.append(data)
        self.buffered += len(data)
        self._wake()

    def _complete(self) -> None:
        self.done = True
        self._conn = None
        self._wake()

    def _fail(self, exc: BaseException) -> None:
        self._error = exc
        self._conn = None
        self._wake()

    # -- the reader's side ---------------------------------------------------------------

    async def _wait(self) -> None:
        while not self._parts:
            if self.done:
                return
            if self._error is not None:
                raise self._error
            self._waiter = self._conn.loop.create_future() if self._conn else None
            if self._waiter is None:
                raise ConnectionResetError("the answer was closed")
            try:
                await self._waiter
            finally:
                self._waiter = None

    def _took(self, size: int) -> None:
        self.buffered -= size
        conn = self._conn
        if conn is not None:
            conn.taken(self.buffered)

    # -- the AsyncResponse interface ---------------------------------------------------

    def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives, never an empty piece; a body cut short raises."""
        return _Chunks(self)

    async def read(self, limit: int) -> bytes:
        """The whole body if it is at most ``limit`` bytes long, else its first ``limit``."""
        parts: list[bytes] = []
        size = 0
        while size < limit:
            data = await self.readany()
            if not data:
                break
            parts.append(data)
            size += len(data)
        data = b"".join(parts)
        return data if len(data) <= limit else data[:limit]

    async def release(self) -> None:
        """The caller has what it needs: wait for the body's end (normally in already) so
        the connection goes back to the pool; a body that goes on, breaks or takes longer
        than :data:`DRAIN_SECONDS` is left for :meth:`close`."""
        try:
            for _ in range(4):
                if self.done:
                    return
                await asyncio.wait_for(self.readany(), DRAIN_SECONDS)
        except (Exception, asyncio.TimeoutError) as exc:
            transport.logger.debug("the end of an event stream could not be read: %s", type(exc))

    # -- reading -----------------------------------------------------------------------

    async def readany(self) -> bytes:
        """All the body that is in (waiting for some); ``b""`` at its end."""
        if not self._parts:
            await self._wait()
            if not self._parts:
                return b""
        parts = self._parts
        data = parts.popleft() if len(parts) == 1 else b"".join(parts)
        parts.clear()
        self._took(len(data))
        return data

    async def readchunk(self) -> tuple[bytes, bool]:
        """The next piece of the body as it arrived, and True; ``(b"", False)`` at its
        end (aiohttp's ``StreamReader.readchunk``)."""
        if not self._parts:
            await self._wait()
            if not self._parts:
                return b"", False
        data = self._parts.popleft()
        self._took(len(data))
        return data, True

    def close(self) -> None:
        """Done with the answer: a connection whose answer is not whole is closed."""
        conn = self._conn
        if conn is not None:
            self._conn = None
            conn.abandon()
            if conn.head.done() is False:
                conn.head.cancel()
        self._parts.clear()


class _Chunks:
    """:meth:`Response.chunks`: the first HTTP chunk alone (the first events go on before
    what came with them is parsed), then all that has arrived (a reader that falls behind
    a fast stream takes many events a read). An iterator object, not an async generator,
    so that one left unfinished (after ``[DONE]``) needs no closing."""

    __slots__ = ("_first", "_response")

    def __init__(self, response: Response) -> None:
        self._response = response
        self._first = True

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        if self._first:
            self._first = False
            data, more = await self._response.readchunk()
        else:
            data = await self._response.readany()
            more = bool(data)
        if not more:
            raise StopAsyncIteration
        return data
