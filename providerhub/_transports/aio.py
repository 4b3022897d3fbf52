"""HTTP for the asyncio path, over aiohttp: the pooled session, sending a request without
letting a redirect change it, and reading bodies within limits.

It is :mod:`providerhub._transports.sync` for an event loop, and leans on it for every decision:
which redirect is followed (:func:`~providerhub._transports.sync.redirect_target`), what an
error status means (:func:`~providerhub._transports.sync.status_error`), and what an aiohttp
exception becomes (:func:`~providerhub._transports.sync.error_for_exception`, the one place).
aiohttp is the ``providerhub[server]`` extra, imported only when an asyncio-native call
is made.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import AsyncGenerator, Iterable, Mapping
from typing import TYPE_CHECKING, cast

from .._timeout import Timeout
from ..errors import ProviderError, ProviderResponseError
from . import lean
from . import sync as transport

if TYPE_CHECKING:
    import asyncio
    import ssl

    import aiohttp

__all__ = [
    "CONNECTIONS",
    "DRAIN_SECONDS",
    "Sessions",
    "error_for_status",
    "new_session",
    "post",
    "read_body",
    "settle",
]

CONNECTIONS = 4096
"""The most connections one session holds open at once, to one host or many: a gateway
holds a thousand streams to one upstream (requests' pool keeps 64 per host, but each of
its connections costs a thread; here they cost a socket)."""

DRAIN_SECONDS = 1.0
"""How long the end of a body that follows its last event (``[DONE]``) is waited for, so
that the connection goes back to the pool."""


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
        if lean.available():
            lean.attach(session)  # plain-http upstreams without a proxy: see post()
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
            lean.detach(session)
            await session.close()

    async def aclose(self) -> None:
        """Close the running loop's session, and the others as :meth:`close` does."""
        import asyncio

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
        # A call with no total: the same few limits again and again, each made once.
        found = _timeouts.get(limits)
        if found is None:
            if len(_timeouts) >= 256:
                _timeouts.clear()
            found = _timeouts[limits] = _new_client_timeout(None, limits.connect, limits.read)
        return found
    left = max(deadline - time.monotonic(), 0.001)
    return _new_client_timeout(left, min(limits.connect, left), min(limits.read, left))


# A dict, not functools.lru_cache: on this per-request path the dict lookup measured
# faster than lru_cache's wrapper.
_timeouts: dict[Timeout, aiohttp.ClientTimeout] = {}


def _new_client_timeout(total: float | None, connect: float, read: float) -> aiohttp.ClientTimeout:
    import aiohttp

    return aiohttp.ClientTimeout(total=total, sock_connect=connect, sock_read=read)


_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def proxy_for(url: str) -> str | None:
    """The proxy ``requests`` would send a request to ``url`` through, from the
    environment (``HTTPS_PROXY``, ``NO_PROXY``, ...), or None. Kept per url and values of
    those variables, as :mod:`providerhub._transports.session` keeps it per origin."""
    from .session import _environment

    # Kept per url, not per origin: no urlsplit per call (a provider has one url).
    return _proxy_for(url, _environment())


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
    an error.

    A plain ``http://`` url reached without a proxy goes through the session's
    :mod:`~providerhub._transports.lean` pool when it has one (a hub's session does), whose
    one timer per call costs less than aiohttp's timeouts; anything else through
    aiohttp."""
    pool = lean.pool_for(session) if url.startswith("http://") else None
    timeout = None
    for _ in range(transport.MAX_REDIRECTS + 1):
        proxy = proxy_for(url)
        if pool is not None and proxy is None:
            # Shaped as the part of an aiohttp response this path reads (see lean).
            response = cast(
                "aiohttp.ClientResponse",
                await lean.post(pool, url, data, headers, limits.connect, limits.read, deadline),
            )
        else:
            if timeout is None:
                timeout = _client_timeout(limits, deadline)
            response = await session.post(
                url,
                data=data,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
                proxy=proxy,
            )
        location = response.headers.get("Location")
        if response.status not in _REDIRECTS or not location:
            return response
        response.close()
        url = transport.redirect_target(
            provider, response.status, response.reason, str(response.url), location, url
        )
    raise transport.too_many_redirects(provider, response.status, str(response.url), url)


async def read_body(response: aiohttp.ClientResponse, limit: int, provider: str) -> bytes:
    """The whole body, or :class:`ProviderResponseError` once it passes ``limit`` bytes
    (the call's deadline is aiohttp's, set by :func:`post`)."""
    data = await _read(response, limit + 1)
    if len(data) > limit:
        raise ProviderResponseError(
            provider,
            f"the answer is larger than {limit} bytes",
            url=transport.safe_url(str(response.url)),
            hint="raise max_body_bytes if such answers are expected",
        )
    return data


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


async def error_for_status(
    provider: str,
    response: aiohttp.ClientResponse,
    secrets: Iterable[str | None] = (),
    *,
    credential_variable: str | None = None,
) -> ProviderError:
    """:func:`providerhub._transports.sync.error_for_status` for an aiohttp response."""
    try:
        body = await _read(response, transport.ERROR_BODY_BYTES)
    except Exception:
        # The excerpt is a courtesy; the status alone is the error.
        body = b""
    return transport.status_error(
        provider,
        response.status,
        response.reason,
        str(response.url),
        response.headers.get("Retry-After"),
        body,
        secrets,
        credential_variable=credential_variable,
    )


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
