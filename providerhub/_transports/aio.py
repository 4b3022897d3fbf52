"""HTTP for the asyncio path: the interface the asyncio driver reads responses through
(:class:`AsyncTransport`, :class:`AsyncResponse`), and its implementation over aiohttp
(:class:`AiohttpTransport`): the pooled session, sending a request without letting a
redirect change it, and reading bodies within limits and deadlines.

It is :mod:`providerhub._transports.sync` for an event loop, and leans on it for which
redirect is followed (:func:`~providerhub._transports.sync.redirect_target`); what an
aiohttp exception becomes is decided in :mod:`providerhub._transports.errors`. aiohttp is
the ``providerhub[server]`` extra, imported only when an asyncio-native call is made.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from .._timeout import Timeout
from . import sync as transport

if TYPE_CHECKING:
    import asyncio
    import ssl

    import aiohttp

__all__ = [
    "CONNECTIONS",
    "DRAIN_SECONDS",
    "AiohttpTransport",
    "AsyncResponse",
    "AsyncTransport",
    "Sessions",
    "new_session",
    "post",
    "settle",
    "transport_for",
]

CONNECTIONS = 4096
"""The most connections one session holds open at once, to one host or many: a gateway
holds a thousand streams to one upstream (requests' pool keeps 64 per host, but each of
its connections costs a thread; here they cost a socket)."""

DRAIN_SECONDS = 1.0
"""How long the end of a body that follows its last event (``[DONE]``) is waited for, so
that the connection goes back to the pool."""


class AsyncResponse(Protocol):
    """An HTTP response whose head is in and whose body is left to read: all the asyncio
    driver (:mod:`providerhub._http.achat`) touches, whatever client made it.

    Every wait ends by the limits the request was sent with (see
    :meth:`AsyncTransport.send`); what goes wrong is raised as :meth:`AsyncTransport.send`
    says. :meth:`close` is always called last, also after :meth:`release`.
    """

    @property
    def status(self) -> int:
        """The HTTP status code."""
        ...

    @property
    def reason(self) -> str | None:
        """The status line's reason phrase, if any."""
        ...

    @property
    def url(self) -> str:
        """The url that answered (the last one, after redirects), as sent: it may carry
        credentials, so messages show it through ``safe_url``."""
        ...

    @property
    def headers(self) -> Mapping[str, str]:
        """The response's headers, looked up without regard to case."""
        ...

    def chunks(self) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive, each item non-empty, until the body ends (a
        body cut short raises): the first item at most one HTTP chunk of a chunked body,
        so that the first events go on before what came with them is parsed; after it,
        all that has arrived. Called at most once; the driver may stop iterating early
        (after ``[DONE]``) without closing the iterator, so it should be a plain object,
        not an async generator."""
        ...

    async def read(self, limit: int) -> bytes:
        """The body, whole when it is at most ``limit`` bytes, else its first ``limit``
        bytes (the rest is left unread, and :meth:`close` drops the connection)."""
        ...

    async def release(self) -> None:
        """The caller has all it needs of the body (read to its end, or to an end marker
        such as ``[DONE]``): read what is left of it, for at most :data:`DRAIN_SECONDS`
        and a few reads, so the connection goes back to the pool; a body that goes on,
        breaks or is late is left to :meth:`close`. Never raises."""
        ...

    def close(self) -> None:
        """Done with the response: a connection whose body was read to its end goes back
        to the pool, any other is closed at once. Idempotent, never waits, never raises;
        what an aborted or cancelled read calls too."""
        ...


class AsyncTransport(Protocol):
    """What sends the asyncio driver's requests: :class:`AiohttpTransport`, or a client of
    its own that keeps the same promises."""

    async def send(
        self, provider: str, request: transport.Outgoing, limits: Timeout, deadline: float | None
    ) -> AsyncResponse:
        """Send ``request`` (its ``method``, ``url``, ``headers`` and ``body``) and return
        the response once its head is in.

        Deadlines are the transport's: connecting takes at most ``limits.connect``, each
        wait for bytes of the answer (its head, then each read of the body) at most
        ``limits.read``, and, with a ``deadline`` (``time.monotonic()``), everything, from
        here to the body's last byte read through the response, ends by it. A limit that
        passes raises ``TimeoutError`` (``asyncio.TimeoutError`` or the library's own
        timeout); the driver tells a deadline from a slow read by the clock.

        Redirects: a 307 or 308 within the origin of ``url`` is followed with the same
        method, headers and body, up to ``MAX_REDIRECTS`` times
        (:func:`providerhub._transports.sync.redirect_target` decides, and raises the
        :class:`ProviderHTTPError` for any other); an error status is returned as a
        response, not raised.

        Errors: a typed :class:`~providerhub.errors.ProviderError` passes through as it
        is; anything else raised here or by the response's methods (``OSError``,
        ``ssl.SSLError``, a timeout, the library's exceptions) is turned into one by the
        driver with :func:`providerhub._transports.errors.error_for_exception`, which
        must know it (a new client's exceptions get a row there).
        """
        ...


def new_session() -> aiohttp.ClientSession:
    """An ``aiohttp.ClientSession`` for the running event loop: up to
    :data:`CONNECTIONS` connections, kept alive between calls; the certificates
    ``requests`` trusts; no cookies kept from one call to the next. (:func:`post` sends
    through the proxy the environment sets, as ``requests`` reads it.)"""
    import aiohttp

    connector = aiohttp.TCPConnector(
        limit=CONNECTIONS, limit_per_host=0, ssl=_tls_context(), ttl_dns_cache=300
    )
    # Not aiohttp's trust_env: it looks up the proxy and ~/.netrc on a worker thread for
    # every request, two thread hops that cost more than the rest of a loopback call.
    # post() passes the proxy requests would use, worked out once per origin.
    return aiohttp.ClientSession(
        connector=connector,
        trust_env=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=None),
    )


class Sessions:
    """The aiohttp sessions of one hub, one per event loop (a session belongs to the loop
    it was made on), each made on first use.

    A session is closed with its loop: when ``asyncio.run`` (or anything that calls
    ``loop.shutdown_asyncgens()``) ends the loop, and by :meth:`close` or :meth:`aclose`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_loop: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}
        # One suspended async generator per session, whose end closes it: the loop closes
        # every async generator still open when it shuts down.
        self._keepers: dict[asyncio.AbstractEventLoop, AsyncGenerator[None, None]] = {}
        self._closing: set[asyncio.Task[None]] = set()  # held until they are done

    async def get(self) -> aiohttp.ClientSession:
        """The session of the running loop."""
        import asyncio

        loop = asyncio.get_running_loop()
        session = self._by_loop.get(loop)
        if session is not None and not session.closed:
            return session
        session = new_session()
        # lean subclasses asyncio.Protocol: imported with the first session, not with
        # this module, so that importing providerhub does not import asyncio.
        from . import lean

        if lean.available():
            lean.attach(session)  # plain-http upstreams without a proxy: see transport_for
        keeper = self._keep(loop, session)
        # Runs to its yield without suspending: no other task gets in between.
        await keeper.__anext__()
        with self._lock:
            self._by_loop[loop] = session
            self._keepers[loop] = keeper
        return session

    async def _keep(
        self, loop: asyncio.AbstractEventLoop, session: aiohttp.ClientSession
    ) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            with self._lock:
                if self._by_loop.get(loop) is session:
                    del self._by_loop[loop]
                    del self._keepers[loop]
            from . import lean

            lean.detach(session)
            await session.close()

    async def aclose(self) -> None:
        """Close the running loop's session, and the others as :meth:`close` does."""
        import asyncio

        from . import lean

        loop = asyncio.get_running_loop()
        with self._lock:
            session = self._by_loop.pop(loop, None)
            self._keepers.pop(loop, None)
        if session is not None:
            lean.detach(session)
            await session.close()
        self.close()

    def close(self) -> None:
        """Close every session: at once when its loop is not running, else soon, on its
        loop (a session's connections belong to its loop)."""
        import asyncio

        from . import lean

        with self._lock:
            sessions = list(self._by_loop.items())
            self._by_loop.clear()
            self._keepers.clear()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for loop, session in sessions:
            lean.detach(session)
            if loop.is_closed():
                continue  # its connections went with it
            if loop is running:
                task = loop.create_task(session.close())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
            elif loop.is_running():
                asyncio.run_coroutine_threadsafe(session.close(), loop)
            else:
                loop.run_until_complete(session.close())


def _tls_context() -> ssl.SSLContext:
    """A verifying TLS context over the certificates ``requests`` uses: the bundle named
    by ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE``, else certifi's (a dependency of
    ``requests``), so both transports trust the same services."""
    import ssl

    cafile = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if not cafile:
        try:
            import certifi
        except ImportError:
            return ssl.create_default_context()
        cafile = certifi.where()
    if os.path.isdir(cafile):
        return ssl.create_default_context(capath=cafile)
    return ssl.create_default_context(cafile=cafile)


def _client_timeout(limits: Timeout, deadline: float | None) -> aiohttp.ClientTimeout:
    """The connect and read timeouts of one request, and what is left of the call's total
    for all of it (aiohttp's ``total`` covers reading the body too)."""
    if deadline is None:
        return _untimed(limits)
    left = max(deadline - time.monotonic(), 0.001)
    return _new_client_timeout(left, min(limits.connect, left), min(limits.read, left))


@functools.lru_cache(maxsize=256)
def _untimed(limits: Timeout) -> aiohttp.ClientTimeout:
    # A call with no total: the same few limits again and again, each made once.
    return _new_client_timeout(None, limits.connect, limits.read)


def _new_client_timeout(total: float | None, connect: float, read: float) -> aiohttp.ClientTimeout:
    import aiohttp

    return aiohttp.ClientTimeout(total=total, sock_connect=connect, sock_read=read)


_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@functools.cache
def _lazy() -> Any:
    """What the calls need that importing providerhub must not import (requests, through
    :mod:`~providerhub._transports.session`; asyncio, through
    :mod:`~providerhub._transports.lean`), imported on first use and then kept: an import
    statement in a function costs about a microsecond a call."""
    from types import SimpleNamespace

    from . import lean
    from .session import environment

    return SimpleNamespace(
        environment=environment,
        pool_for=lean.pool_for,
        LeanTransport=lean.LeanTransport,
    )


def proxy_for(url: str) -> str | None:
    """The proxy ``requests`` would send a request to ``url`` through, from the
    environment (``HTTPS_PROXY``, ``NO_PROXY``, ...), or None. Kept per url and values of
    those variables, as :mod:`providerhub._transports.session` keeps it per origin."""
    # Kept per url, not per origin: no urlsplit per call (a provider has one url).
    return _proxy_for(url, _lazy().environment())


@functools.lru_cache(maxsize=256)
def _proxy_for(url: str, environment: tuple[object, ...]) -> str | None:
    # ``environment`` (the proxy and CA variables' values) is only part of the cache's key:
    # get_environ_proxies reads those variables itself.
    from requests.utils import get_environ_proxies, select_proxy

    return select_proxy(url, get_environ_proxies(url))


async def post(
    session: aiohttp.ClientSession,
    provider: str,
    url: str,
    data: bytes,
    headers: Mapping[str, str],
    limits: Timeout,
    deadline: float | None,
) -> aiohttp.ClientResponse:
    """POST ``data`` to ``url``; the response's body is left to read. Redirects are
    those of :func:`providerhub._transports.sync.post`: a 307 or 308 within the origin is
    followed, up to :data:`~providerhub._transports.sync.MAX_REDIRECTS` times, anything else is
    an error."""
    timeout = _client_timeout(limits, deadline)
    for _ in range(transport.MAX_REDIRECTS + 1):
        response = await session.post(
            url,
            data=data,
            headers=headers,
            timeout=timeout,
            allow_redirects=False,
            proxy=proxy_for(url),
        )
        location = response.headers.get("Location")
        if response.status not in _REDIRECTS or not location:
            return response
        response.close()
        url = transport.redirect_target(
            provider, response.status, response.reason, str(response.url), location, url
        )
    raise transport.too_many_redirects(provider, response.status, str(response.url), url)


async def _read(response: aiohttp.ClientResponse, amount: int) -> bytes:
    """Up to ``amount`` bytes of the body."""
    parts: list[bytes] = []
    size = 0
    while size < amount:
        chunk = await response.content.read(amount - size)
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)


async def settle(response: aiohttp.ClientResponse) -> None:
    """After the last event: read what is left of the body (normally just its end, often
    already in) so the connection goes back to the pool; a body that goes on, breaks or
    takes longer than :data:`DRAIN_SECONDS` is left to be closed, the answer is whole."""
    import asyncio

    content = response.content
    try:
        for _ in range(4):
            if content.at_eof():
                return
            await asyncio.wait_for(content.readany(), DRAIN_SECONDS)
    except (Exception, asyncio.TimeoutError) as exc:
        transport.logger.debug("the end of an event stream could not be read: %s", type(exc))


def transport_for(session: aiohttp.ClientSession) -> AsyncTransport:
    """The transport of a call over ``session``: a hub's session (:class:`Sessions`) sends
    to plain ``http://`` urls without a proxy through its
    :mod:`~providerhub._transports.lean` pool, whose one timer per call costs less than
    aiohttp's timeouts, and everything else through aiohttp; any other session through
    aiohttp alone."""
    fallback = AiohttpTransport(session)
    lean = _lazy()
    pool = lean.pool_for(session)
    if pool is None:
        return fallback
    chosen: AsyncTransport = lean.LeanTransport(pool, fallback, proxy_for)
    return chosen


class AiohttpTransport:
    """:class:`AsyncTransport` over an ``aiohttp.ClientSession`` (see :func:`new_session`)."""

    __slots__ = ("session",)

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def send(
        self, provider: str, request: transport.Outgoing, limits: Timeout, deadline: float | None
    ) -> AsyncResponse:
        method, url, headers, body = request.method, request.url, request.headers, request.body
        if method != "POST":
            raise ValueError(f"only POST is sent, not {method}")
        response = await post(self.session, provider, url, body, headers, limits, deadline)
        return _AiohttpResponse(response, deadline)


class _AiohttpResponse:
    """:class:`AsyncResponse` over an ``aiohttp.ClientResponse``: aiohttp keeps the
    limits (its ``ClientTimeout``, set by :func:`post`) and pools a connection whose body
    was read to its end by itself."""

    __slots__ = ("_deadline", "_response", "status", "url")

    def __init__(self, response: aiohttp.ClientResponse, deadline: float | None) -> None:
        self._response = response
        self._deadline = deadline
        self.status = response.status
        self.url = str(response.url)

    @property
    def reason(self) -> str | None:
        return self._response.reason

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    def chunks(self) -> AsyncIterator[bytes]:
        return _Chunks(self._response.content, self._deadline)

    async def read(self, limit: int) -> bytes:
        return await _read(self._response, limit)

    async def release(self) -> None:
        await settle(self._response)

    def close(self) -> None:
        # After a whole body aiohttp has pooled the connection already, and this does
        # nothing; otherwise (a failure, a cancellation, an early close) it closes it.
        self._response.close()


class _Chunks:
    """The body's chunks: the first one HTTP chunk (``readchunk``), then all that has
    arrived (``readany``: a reader that falls behind a fast stream takes many events a
    read). An iterator object, not an async generator, so that one left unfinished (after
    ``[DONE]``) needs no closing. aiohttp's timer cuts a wait at the deadline; a body that
    never makes it wait is cut here."""

    __slots__ = ("_content", "_deadline", "_first")

    def __init__(self, content: aiohttp.StreamReader, deadline: float | None) -> None:
        self._content = content
        self._deadline = deadline
        self._first = True

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        content = self._content
        while True:
            if self._deadline is not None and time.monotonic() >= self._deadline:
                raise TimeoutError("the call's deadline passed")
            if self._first:
                data, _ = await content.readchunk()
            else:
                data = await content.readany()
            if data:
                self._first = False
                return data
            if content.at_eof():
                raise StopAsyncIteration
