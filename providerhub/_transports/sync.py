"""HTTP for providers over ``requests``: pooled sessions, sending a request without letting
a redirect change it, and reading bodies within limits and deadlines.

This module knows HTTP, not any API on top of it (that is :mod:`providerhub._codecs`),
and keeps every deadline of the synchronous path: the driver
(:mod:`providerhub._http.chat`) keeps no clock. What the network raises becomes a typed
error in :mod:`providerhub._transports.errors`. ``requests`` is imported only when a
session is first needed, so importing providerhub and listing providers stays fast.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
from collections.abc import Iterator, Mapping
from time import monotonic
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urljoin, urlsplit

from .. import _settings as settings
from .._redaction import one_line, safe_url
from .._timeout import Timeout
from ..errors import ProviderHTTPError
from .abort import body_socket, current_abort
from .errors import configuration_error, total_timeout

if TYPE_CHECKING:
    import requests

__all__ = [
    "DEADLINE_SLACK",
    "ERROR_BODY_BYTES",
    "MAX_REDIRECTS",
    "POOL_SIZE",
    "READ_SIZE",
    "Outgoing",
    "RequestsResponse",
    "RequestsTransport",
    "body_chunks",
    "default_session",
    "drain",
    "new_session",
    "post",
    "read_body",
    "redirect_error",
    "redirect_target",
    "too_many_redirects",
]

logger = logging.getLogger("providerhub.transport")  # a stable name for users' logging config

POOL_SIZE = 64
ERROR_BODY_BYTES = 64 * 1024

_default_session: requests.Session | None = None
_default_lock = threading.Lock()


def new_session(pool_size: int = POOL_SIZE) -> requests.Session:
    """A ``requests.Session`` whose pool keeps ``pool_size`` connections per host, so
    concurrent calls through one hub reuse connections instead of opening new ones, and
    which reads proxy settings from the environment once per origin (see
    :mod:`providerhub._transports.session`)."""
    from .abortable import AbortableAdapter
    from .session import Session

    session = Session()
    adapter = AbortableAdapter(pool_connections=8, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def default_session() -> requests.Session:
    """The session shared by calls made outside any hub (a provider called directly)."""
    global _default_session
    if _default_session is None:
        with _default_lock:
            if _default_session is None:
                _default_session = new_session()
    return _default_session


MAX_REDIRECTS = 5
"""How many same-origin 307/308 redirects :func:`post` follows for one request."""


def post(
    session: requests.Session,
    provider: str,
    url: str,
    data: bytes,
    headers: Mapping[str, str],
    limits: Timeout,
) -> requests.Response:
    """POST ``data`` to ``url``; the response's body is left to read. Connecting and each
    read wait at most ``limits.connect`` and ``limits.read``, neither longer than
    ``limits.total``.

    Redirects are not left to ``requests``, which turns a POST into a body-less GET on a
    301, 302 or 303 (whose answer would be taken for the completion) and sends the
    request's own headers, an ``api-key`` say, to whatever host it is pointed at. A 307 or
    308 to the same origin (scheme, host and port) is followed, with the same body and
    headers, up to :data:`MAX_REDIRECTS` times; any other redirect, and a longer chain, is
    a :class:`ProviderHTTPError` naming where it pointed, which no retry changes.
    """
    _check_host(provider, url)
    timeout = _wait(limits)
    for _ in range(MAX_REDIRECTS + 1):
        response = session.post(
            url, data=data, headers=headers, timeout=timeout, stream=True, allow_redirects=False
        )
        location = session.get_redirect_target(response)
        if location is None:
            return response
        response.close()
        url = redirect_target(
            provider, response.status_code, response.reason, response.url, location, url
        )
    raise too_many_redirects(provider, response.status_code, response.url, url)


def redirect_target(
    provider: str, status: int, reason: str | None, url: str, location: str, asked: str
) -> str:
    """Where to send the request again after ``status`` from ``url`` pointed at
    ``location``: a 307 or 308 within the origin of ``asked`` (the url first asked) is
    followed; anything else is the :class:`ProviderHTTPError` :func:`post` describes."""
    target = urljoin(url, location)
    if status not in (307, 308):
        why = (
            "providerhub does not follow it: the request would be sent again as a GET "
            "without its body"
        )
    elif _origin(target) != _origin(asked):
        why = (
            "providerhub follows redirects only within the same scheme, host and port, "
            "so that the credential and the configured headers go nowhere else"
        )
    else:
        return target
    raise redirect_error(provider, status, reason, url, target, why)


def too_many_redirects(provider: str, status: int, url: str, target: str) -> ProviderHTTPError:
    """The error of a chain of more than :data:`MAX_REDIRECTS` redirects."""
    return ProviderHTTPError(
        provider,
        f"HTTP {status} from {safe_url(url)}: redirected more than {MAX_REDIRECTS} "
        f"times, last to {safe_url(target)}",
        status_code=status,
        url=safe_url(url),
        hint=f"the endpoint redirects in a loop: check the url ({settings.url_variable(provider)})",
    )


def _origin(url: str) -> tuple[str, str, int | None] | None:
    try:
        parts = urlsplit(url)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    except ValueError:
        return None
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def redirect_error(
    provider: str, status: int, reason: str | None, url: str, target: str, why: str
) -> ProviderHTTPError:
    """The error of a redirect from ``url`` to ``target`` that is not followed, and
    ``why``."""
    head = f"HTTP {status} {reason or ''}".rstrip()
    return ProviderHTTPError(
        provider,
        f"{head} from {safe_url(url)}: the endpoint redirected to {safe_url(target)}",
        status_code=status,
        url=safe_url(url),
        hint=f"{why}; if the new address is right, set the provider's url to it "
        f"({settings.url_variable(provider)})",
    )


def _wait(limits: Timeout) -> tuple[float, float]:
    """The connect and read timeouts of the request, none longer than the total."""
    if limits.total is None:
        return limits
    return min(limits.connect, limits.total), min(limits.read, limits.total)


READ_SIZE = 64 * 1024


def body_chunks(
    response: requests.Response, deadline: float | None = None, provider: str = ""
) -> Iterator[bytes]:
    """The body's bytes as they arrive, for a streamed response; with a ``deadline``
    (``time.monotonic()``), each read within it, or :class:`ProviderTimeoutError` naming
    ``provider``.

    A chunked body is read one HTTP chunk at a time with urllib3's ``read_chunked``, the
    cheapest read per call it has (servers that flush every token send one event per
    chunk, so this cost is paid per event); any other body with ``read1``, which returns
    what has arrived instead of waiting for a full buffer.
    """
    raw = response.raw
    chunks: Iterator[bytes]
    if getattr(raw, "chunked", False) and raw.supports_chunked_reads():
        chunks = raw.read_chunked(READ_SIZE, decode_content=True)
    elif getattr(raw, "read1", None) is not None:
        read1 = raw.read1
        chunks = iter(lambda: read1(READ_SIZE), b"")
    else:
        chunks = raw.stream(READ_SIZE, decode_content=True)  # urllib3 1.x
    if deadline is None:
        return chunks
    return _within(chunks, response, deadline, provider)


DEADLINE_SLACK = 0.01
"""How late past its deadline a read may end: a socket's timeout is set afresh only when
this much time has passed since it was last set (setting it is a system call, and a stream
may bring a hundred thousand pieces a second)."""


def _within(
    chunks: Iterator[bytes], response: requests.Response, deadline: float, provider: str
) -> Iterator[bytes]:
    """``chunks``, each awaited no longer than what is left before ``deadline``.

    The socket's timeout is shrunk to what is left before each read, so a late piece is
    timed against the deadline while it is awaited, not once it arrives (urllib3 sets the
    timeout afresh for the connection's next request). A piece that took several reads and
    ended past the deadline ends the body too."""
    sock, read_timeout = body_socket(response)
    shrunk = -math.inf  # when the socket's timeout was last set
    while True:
        now = monotonic()
        if now >= deadline:
            raise total_timeout(provider, safe_url(response.url))
        if sock is not None and now - shrunk > DEADLINE_SLACK:
            sock.settimeout(min(read_timeout, deadline - now))
            shrunk = now
        chunk = next(chunks, None)
        if chunk is None:
            return
        if monotonic() > deadline:
            raise total_timeout(provider, safe_url(response.url))
        yield chunk


def read_body(
    response: requests.Response, amount: int, provider: str, deadline: float | None = None
) -> bytes:
    """The body, whole when it is at most ``amount`` bytes, else its first ``amount``
    bytes; :class:`ProviderTimeoutError` once ``deadline`` (``time.monotonic()``)
    passes."""
    if deadline is None:
        return bytes(response.raw.read(amount, decode_content=True))
    parts: list[bytes] = []
    size = 0
    for chunk in body_chunks(response, deadline, provider):
        parts.append(chunk)
        size += len(chunk)
        if size >= amount:
            break
    return b"".join(parts)[:amount]


def drain(chunks: Iterator[bytes]) -> None:
    """Read what follows a stream's end marker (``[DONE]``) in ``chunks`` (those of
    :func:`body_chunks`), normally just the end of the body, so the connection goes back
    to the pool instead of being closed; a body that goes on, breaks or passes the
    deadline is left to close: the answer is whole already."""
    try:
        for _ in zip(range(4), chunks):
            pass
    except Exception as exc:
        logger.debug("the end of an event stream could not be read: %s", type(exc).__name__)


def _check_host(provider: str, url: str) -> None:
    """Refuse a url whose host part cannot be parsed, before sending: what urllib3 makes of
    one (``http://[bad``, say) differs between Python versions, and some of it reads as
    nonsense ("'NoneType' object has no attribute 'groups'")."""
    problem = _host_problem(url)
    if problem is not None:
        raise configuration_error(provider, "url", safe_url(url), problem)


@functools.lru_cache(maxsize=256)
def _host_problem(url: str) -> str | None:
    # Kept per url: a provider sends every request to the same few.
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # parsing the port is what raises for a bad one
    except ValueError as exc:
        return f"not a valid host ({one_line(exc, typed=False)})"
    if any(c.isspace() or not c.isprintable() for c in parts.hostname or ""):
        return "invalid character in the host name"
    return None


class Outgoing(Protocol):
    """A request as every transport takes it: what a codec's ``Request`` carries, and all
    that HTTP needs of it."""

    @property
    def method(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def body(self) -> bytes: ...


class RequestsTransport:
    """What the exchange over ``requests`` (:mod:`providerhub._http._exchange`) sends
    with: the synchronous twin of :class:`~providerhub._transports.aio.AsyncTransport`,
    keeping its promises with :func:`post` over ``session``. Each response is registered
    with the call's :class:`~providerhub._transports.abort.Abort`, if it has one."""

    __slots__ = ("session",)

    def __init__(self, session: requests.Session) -> None:
        self.session = session

    def send(
        self, provider: str, request: Outgoing, limits: Timeout, deadline: float | None
    ) -> RequestsResponse:
        """POST ``request.body`` to ``request.url`` with :func:`post` and return the
        response once its head is in (``method`` is POST: the codecs send nothing else,
        and neither transport sends another)."""
        url, headers, body = request.url, request.headers, request.body
        response = post(self.session, provider, url, body, headers, limits)
        abort = current_abort()
        if abort is not None:
            abort.register(response)
        return RequestsResponse(response, provider, deadline)


class RequestsResponse:
    """The synchronous twin of :class:`~providerhub._transports.aio.AsyncResponse`, over
    a ``requests.Response``: every read within the call's ``deadline``."""

    __slots__ = (
        "_chunks",
        "_deadline",
        "_provider",
        "_response",
        "headers",
        "reason",
        "status",
        "url",
    )

    def __init__(self, response: requests.Response, provider: str, deadline: float | None) -> None:
        self._response = response
        self._provider = provider
        self._deadline = deadline
        self._chunks: Iterator[bytes] | None = None
        self.status = response.status_code
        self.reason: str | None = response.reason
        self.url = response.url
        self.headers: Mapping[str, str] = response.headers

    def chunks(self) -> Iterator[bytes]:
        """:func:`body_chunks`: the body's bytes as they arrive."""
        self._chunks = body_chunks(self._response, self._deadline, self._provider)
        return self._chunks

    def read(self, limit: int) -> bytes:
        """:func:`read_body`: the body, or its first ``limit`` bytes."""
        return read_body(self._response, limit, self._provider, self._deadline)

    def release(self) -> None:
        """:func:`drain` what is left of :meth:`chunks`, so the connection goes back to
        the pool."""
        if self._chunks is not None:
            drain(self._chunks)

    def close(self) -> None:
        self._response.close()
