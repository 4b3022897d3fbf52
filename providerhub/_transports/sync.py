"""HTTP for providers: pooled sessions, sending a request without letting a redirect change
it, reading bodies within limits and deadlines, and turning what the network and the server
did into providerhub's typed errors.

Whatever ``requests``, ``urllib3``, ``aiohttp`` (the asyncio transport's,
:mod:`providerhub._transports.aio`), ``ssl``, ``socket`` or ``urllib`` raise becomes a typed
error in one place, :func:`error_for_exception` (:class:`Translation` is its ``with``
form); an HTTP error status in :func:`error_for_status`. Every message goes through
:func:`redact` with the call's credentials.

This module knows HTTP, not any API on top of it (that is :mod:`providerhub._http.chat`).
``requests`` is imported only when a session is first needed, so importing providerhub and
listing providers stays fast.
"""

from __future__ import annotations

import errno
import functools
import json
import logging
import math
import re
import socket
import sys
import threading
from base64 import b64encode
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from email.utils import parsedate_to_datetime
from time import monotonic, time
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from .. import _settings as settings
from ..errors import (
    AuthenticationError,
    ProviderConfigurationError,
    ProviderConnectionError,
    ProviderError,
    ProviderHTTPError,
    ProviderHubError,
    ProviderResponseError,
    ProviderTimeoutError,
    RateLimitError,
    StreamInterruptedError,
)

if TYPE_CHECKING:
    from types import TracebackType

    import requests

__all__ = [
    "DEADLINE_SLACK",
    "DEFAULT_MAX_BODY_BYTES",
    "ERROR_BODY_BYTES",
    "MAX_REDIRECTS",
    "POOL_SIZE",
    "READ_SIZE",
    "Abort",
    "CallAborted",
    "Translation",
    "body_chunks",
    "body_socket",
    "current_abort",
    "default_session",
    "dumps",
    "error_for_exception",
    "error_for_status",
    "error_message",
    "excerpt",
    "media_type",
    "new_session",
    "one_line",
    "post",
    "read_body",
    "redact",
    "redirect_error",
    "redirect_target",
    "safe_url",
    "set_abort",
    "shutdown_socket",
    "status_error",
    "too_many_redirects",
    "total_timeout",
    "url_secrets",
]

logger = logging.getLogger("providerhub.transport")  # a stable name for users' logging config

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
POOL_SIZE = 64
EXCERPT_CHARS = 200

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


class Abort:
    """Lets another thread cut a call's HTTP exchanges short.

    The asyncio API runs a call in a worker thread; when its task is cancelled it calls
    :meth:`abort`, which first runs what was handed to :meth:`on_abort` (the router gives
    back the breaker's claims there, so a probe is free again at once), then shuts down the
    sockets of the connections the call is using (:meth:`watch`: the hub's sessions tell
    it of each, see
    :mod:`providerhub._transports.abortable`) and of the responses registered so far,
    so the worker's blocked read returns at once, even one still waiting for the response's
    headers, and wakes the router if it is waiting to retry; the router asks no provider
    after that, and the worker ends, closing the sockets.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._responses: list[requests.Response] = []
        self._connections: list[Any] = []
        self._callbacks: list[Callable[[], None]] = []
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

    def on_abort(self, callback: Callable[[], None]) -> None:
        """Have ``callback`` (quick, never raising) run when the call is aborted: at once
        if it already was."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)
                return
        callback()

    def abort(self) -> None:
        with self._lock:
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        # The claims first: once they are abandoned, nothing the worker sees can count.
        for callback in callbacks:
            callback()
        with self._lock:
            responses, self._responses = self._responses, []
            connections, self._connections = self._connections, []
            # Under the lock: a connection given back to its pool (unwatch) could be lent
            # to another call the moment after, and its socket is not this call's to cut.
            for connection in connections:
                shutdown_socket(connection.sock)
        for response in responses:
            _shutdown(response)

    def wait(self, seconds: float) -> bool:
        """Sleep ``seconds``, or less if the call is aborted meanwhile; True if it is."""
        return self._event.wait(seconds)


class CallAborted(BaseException):
    """The call was aborted (see :class:`Abort`): nobody waits for its outcome any more.

    A ``BaseException``, as ``asyncio.CancelledError`` is, so that no ``except Exception``
    (the router's fallback among them) takes it for a provider's failure.
    """


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


@functools.lru_cache(maxsize=256)
def safe_url(url: str) -> str:
    """``url`` without user info and query, fit for an error message. Kept per url: each
    stream's reader takes its url's at the start, and a provider has one url."""
    # Without a scheme, "user:password@host" would be read as scheme "user" and a path.
    schemeless = "://" not in url
    try:
        parts = urlsplit("//" + url if schemeless else url)
        port = parts.port
    except ValueError:
        return "<unparsable url>"
    host = parts.hostname or ""
    if port:
        host = f"{host}:{port}"
    shown = urlunsplit((parts.scheme, host, parts.path, "", ""))
    return shown[2:] if schemeless else shown


@functools.lru_cache(maxsize=256)
def url_secrets(url: str) -> tuple[str, ...]:
    """The credentials ``url`` carries as user info (``user:password@host``), in every form
    a message could show them: as written, percent-decoded, and as the ``Authorization:
    Basic`` value ``requests`` makes of them. Works on urls too broken to parse."""
    rest = url.partition("://")[2] or url
    userinfo, at, _ = re.split(r"[/?#]", rest, maxsplit=1)[0].rpartition("@")
    if not at:
        return ()
    user, _, password = userinfo.partition(":")
    basic = f"{unquote(user)}:{unquote(password)}".encode("latin-1", "replace")
    found = [userinfo, password, unquote(password), b64encode(basic).decode("ascii")]
    if len(user) >= 4:  # shorter names are common words, and no secret on their own
        found += [user, unquote(user)]
    return tuple(sorted({s for s in found if s}, key=len, reverse=True))


_BEARER = re.compile(r"(?i)(bearer|token|api[_-]?key)([\s:=\"']+)[A-Za-z0-9._~+/=-]{6,}")
_QUERY_VALUE = re.compile(r"(?<=[?&])([A-Za-z0-9_.-]+)=[^\s&)'\"]+")
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/?#@'\"]+@")


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with every given secret, the user info of every url, anything that looks
    like a bearer token or API key, and every query-string value (where keys often travel),
    replaced by ``***``."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _USERINFO.sub(r"\1***@", text)
    text = _QUERY_VALUE.sub(r"\1=***", text)
    return _BEARER.sub(r"\1\2***", text)


_EXCERPT_SCAN = 16 * 1024
_LAST_WORD = re.compile(r"\S*\Z")


def excerpt(body: bytes | str, secrets: Iterable[str | None] = ()) -> str:
    """A short, one-line, redacted excerpt of a response body.

    It is redacted before it is cut: cut first, a credential crossing the cut would no
    longer match, and all of it but its last characters would show."""
    head = body[:_EXCERPT_SCAN]
    text = head.decode("utf-8", "replace") if isinstance(head, bytes) else head
    cut = len(body) > _EXCERPT_SCAN
    if cut:
        # The word running past the scanned part may be the start of a credential.
        text = _LAST_WORD.sub("", text)
    text = " ".join(redact(text, secrets).split())
    if len(text) > EXCERPT_CHARS:
        return text[:EXCERPT_CHARS] + "..."
    return text + "..." if cut else text


def one_line(exc: BaseException, *, typed: bool = True) -> str:
    """``exc`` on one line: ``Type: message``, or the type alone when the message is empty;
    with ``typed`` false the message alone (the type when it is empty). Not redacted."""
    text = " ".join(str(exc).split())
    if not typed:
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def media_type(content_type: str | None) -> str:
    """The media type of a ``Content-Type`` value, lower case, without its parameters:
    ``Text/Event-Stream; charset=utf-8`` is ``text/event-stream``."""
    return (content_type or "").partition(";")[0].strip().lower()


MAX_REDIRECTS = 5
"""How many same-origin 307/308 redirects :func:`post` follows for one request."""


def post(
    session: requests.Session,
    provider: str,
    url: str,
    data: bytes,
    headers: Mapping[str, str],
    timeout: tuple[float, float],
) -> requests.Response:
    """POST ``data`` to ``url``; the response's body is left to read.

    Redirects are not left to ``requests``, which turns a POST into a body-less GET on a
    301, 302 or 303 (whose answer would be taken for the completion) and sends the
    request's own headers, an ``api-key`` say, to whatever host it is pointed at. A 307 or
    308 to the same origin (scheme, host and port) is followed, with the same body and
    headers, up to :data:`MAX_REDIRECTS` times; any other redirect, and a longer chain, is
    a :class:`ProviderHTTPError` naming where it pointed, which no retry changes.
    """
    _check_host(provider, url)
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
        raise redirect_error(
            provider,
            status,
            reason,
            url,
            target,
            "providerhub does not follow it: the request would be sent again as a GET "
            "without its body",
        )
    if _origin(target) != _origin(asked):
        raise redirect_error(
            provider,
            status,
            reason,
            url,
            target,
            "providerhub follows redirects only within the same scheme, host and port, "
            "so that the credential and the configured headers go nowhere else",
        )
    return target


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


def body_socket(response: requests.Response) -> tuple[Any, float]:
    """The socket ``response``'s body arrives on (None where urllib3 does not show it), and
    its read timeout now (infinite when it has none)."""
    sock = getattr(getattr(response.raw, "connection", None), "sock", None)
    if sock is None or not hasattr(sock, "settimeout"):
        return None, math.inf
    timeout = sock.gettimeout()
    return sock, math.inf if timeout is None else timeout


def total_timeout(provider: str, url: str) -> ProviderTimeoutError:
    """The error of a call whose total timeout passed while its answer was arriving."""
    return ProviderTimeoutError(
        provider,
        f"the answer from {url} took longer than the total timeout",
        url=url,
        hint="raise timeout= for long answers",
    )


def read_body(
    response: requests.Response, limit: int, provider: str, deadline: float | None = None
) -> bytes:
    """The whole body, or :class:`ProviderResponseError` once it passes ``limit`` bytes,
    or :class:`ProviderTimeoutError` once ``deadline`` (``time.monotonic()``) passes."""
    data = _read(response, limit + 1, provider, deadline)
    if len(data) > limit:
        raise ProviderResponseError(
            provider,
            f"the answer is larger than {limit} bytes",
            url=safe_url(response.url),
            hint="raise max_body_bytes if such answers are expected",
        )
    return data


def _read(response: requests.Response, amount: int, provider: str, deadline: float | None) -> bytes:
    """Up to ``amount`` bytes of the body, read within ``deadline``."""
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


ERROR_BODY_BYTES = 64 * 1024


def error_for_status(
    provider: str,
    response: requests.Response,
    secrets: Iterable[str | None] = (),
    *,
    credential_variable: str | None = None,
    deadline: float | None = None,
) -> ProviderError:
    """The typed error for an HTTP error status, with an excerpt of the body; an
    authentication error names ``credential_variable`` (by default
    ``PROVIDERHUB_<NAME>_API_KEY``) as the one to set. The body is read within
    ``deadline``; one that does not arrive in time is left out, as the status alone is
    the error."""
    try:
        body = _read(response, ERROR_BODY_BYTES, provider, deadline)
    except Exception:
        # The excerpt is a courtesy; the status alone is the error.
        body = b""
    return status_error(
        provider,
        response.status_code,
        response.reason,
        response.url,
        response.headers.get("Retry-After"),
        body,
        secrets,
        credential_variable=credential_variable,
    )


def status_error(
    provider: str,
    status: int,
    reason: str | None,
    url: str,
    retry_after_header: str | None,
    body: bytes,
    secrets: Iterable[str | None] = (),
    *,
    credential_variable: str | None = None,
) -> ProviderError:
    """:func:`error_for_status` from the parts of a response, whatever client read it:
    its ``status``, ``reason``, ``url``, ``Retry-After`` header and (the start of) its
    ``body``."""
    secrets = [*secrets, *url_secrets(url)]
    shown = safe_url(url)
    found = error_message(body)
    detail = excerpt(found if found is not None else body, secrets) or None
    head = f"HTTP {status} {reason or ''}".rstrip()
    message = f"{head} from {shown}"
    retry_after = parse_retry_after(retry_after_header)
    kind: type[ProviderHTTPError] = ProviderHTTPError
    if status in (401, 403):
        kind = AuthenticationError
        hint = (
            "the service refused the credential: set "
            f"{credential_variable or settings.api_key_variable(provider)} "
            f"or pass auth={{'{provider}': ...}}"
        )
    elif status == 429:
        kind = RateLimitError
        wait = f"retry after {retry_after:g} s" if retry_after is not None else "retry later"
        hint = f"rate limited: {wait}, or use another provider"
    elif status == 404:
        hint = f"no chat completions endpoint there: check {settings.url_variable(provider)}"
    elif status >= 500:
        hint = "the service failed: try again later or use another provider"
    else:
        hint = "the service rejected the request"
    return kind(
        provider,
        message,
        status_code=status,
        retry_after=retry_after,
        url=shown,
        body=detail,
        hint=hint,
    )


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def error_message(answer: bytes | str | Any) -> str | None:
    """The message of an OpenAI-style error answer, given as its JSON text or as the
    parsed document: ``error.message``, ``error`` itself when it is a string, or FastAPI's
    ``detail``; None when there is none."""
    doc = answer
    if isinstance(answer, (bytes, str)):
        try:
            doc = json.loads(answer)
        except ValueError:
            return None
    if isinstance(doc, dict):
        err = doc.get("error", doc.get("detail"))
        if isinstance(err, dict):
            err = err.get("message")
        if isinstance(err, str):
            return err
    return None


class Translation:
    """The ``with`` form of :func:`error_for_exception`: whatever the network, ``requests``
    or the code reading the answer raises inside it leaves it as the typed error for
    ``provider`` (a :class:`ProviderHubError` leaves as it is).

    ``started`` says whether the answer's text has begun to reach the caller, which turns
    a dropped connection into an interrupted stream; ``deadline`` (``time.monotonic()``)
    tells a timeout of the whole call from a slow read.
    """

    __slots__ = ("deadline", "provider", "secrets", "started", "url")

    def __init__(
        self,
        provider: str,
        url: str,
        secrets: Iterable[str | None] = (),
        *,
        deadline: float | None = None,
    ) -> None:
        self.provider = provider
        self.url = url
        self.secrets = list(secrets)
        self.deadline = deadline
        self.started = False

    def __enter__(self) -> Translation:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not isinstance(exc, Exception) or isinstance(exc, ProviderHubError):
            return  # no exception, one of ours, or GeneratorExit and its kin
        raise error_for_exception(
            self.provider,
            exc,
            self.url,
            started=self.started,
            secrets=self.secrets,
            deadline=self.deadline,
        ) from None


def error_for_exception(
    provider: str,
    exc: BaseException,
    url: str,
    *,
    started: bool = False,
    secrets: Iterable[str | None] = (),
    deadline: float | None = None,
) -> ProviderError:
    """The typed error for what was raised while asking ``provider`` at ``url``: the one
    place where ``requests``, ``urllib3``, ``aiohttp``, ``ssl``, ``socket`` and ``urllib``
    exceptions become providerhub's errors.

    A timeout is a :class:`ProviderTimeoutError`; a TLS or certificate failure, an invalid
    url or scheme, or a proxy failure a :class:`ProviderConfigurationError` (not
    transient: retrying cannot help); any other network failure a
    :class:`ProviderConnectionError`, or a :class:`StreamInterruptedError` once ``started``
    (the answer's text had begun to reach the caller). What is not a network failure is
    a :class:`ProviderResponseError` for ``KeyError``, ``IndexError`` and ``ValueError``
    (the answer was not what was expected), else a :class:`ProviderError` naming the
    plugin as the culprit. A :class:`ProviderError` is returned as it is. ``secrets``, and
    the credentials in ``url``, are redacted from every message.
    """
    if isinstance(exc, ProviderError):
        return exc
    secrets = [*secrets, *url_secrets(url)]
    shown = safe_url(url)
    kind = _network_kind(exc)
    if kind is None:
        return _not_network_error(provider, exc, shown, secrets)
    if kind == "timeout":
        if deadline is not None and monotonic() >= deadline - _CLOCK_SLACK:
            return total_timeout(provider, shown)
        phase = "connecting" if _is_connect_timeout(exc) else "waiting"
        return ProviderTimeoutError(
            provider,
            f"timed out {phase} for {shown}",
            url=shown,
            hint="the service is slow or down: raise timeout= or try another provider",
        )
    reason = _reason(exc, secrets)
    if started:
        return StreamInterruptedError(
            provider,
            f"the connection to {shown} broke mid-answer ({reason})",
            url=shown,
            hint="the answer is incomplete: try again",
        )
    if kind != "network":
        return _configuration_error(provider, kind, shown, reason)
    return ProviderConnectionError(
        provider,
        f"could not connect to {shown} ({reason})",
        url=shown,
        hint="is the service up, and is the url right? it can be set with "
        f"{settings.url_variable(provider)}",
    )


def _not_network_error(
    provider: str, exc: BaseException, url: str, secrets: list[str | None]
) -> ProviderError:
    text = redact(one_line(exc), secrets)
    if isinstance(exc, (KeyError, IndexError, ValueError)):
        return ProviderResponseError(
            provider,
            f"could not read the service's answer ({text})",
            url=url,
            hint="the service may have changed its API; try another provider",
        )
    return ProviderError(
        provider,
        f"raised {text}",
        url=url,
        hint="a bug in the provider's plugin; try another provider",
    )


def _check_host(provider: str, url: str) -> None:
    """Refuse a url whose host part cannot be parsed, before sending: what urllib3 makes of
    one (``http://[bad``, say) differs between Python versions, and some of it reads as
    nonsense ("'NoneType' object has no attribute 'groups'")."""
    problem = _host_problem(url)
    if problem is not None:
        raise _configuration_error(provider, "url", safe_url(url), problem)


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


def _configuration_error(
    provider: str, kind: str, url: str, reason: str
) -> ProviderConfigurationError:
    variable = settings.url_variable(provider)
    if kind == "tls":
        message = f"TLS handshake with {urlsplit(url).netloc or url} failed: {reason}"
        hint = (
            "check that the url's scheme is right (https:// to a server that speaks plain "
            "HTTP fails so) and that the service's certificate is trusted (REQUESTS_CA_BUNDLE "
            f"names a private CA); the url can be set with {variable}"
        )
    elif kind == "proxy":
        message = f"the proxy for {url} failed: {reason}"
        hint = (
            "check the proxy settings (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY, or the "
            "session's proxies)"
        )
    else:
        message = f"the request to {url} cannot be sent: {reason}"
        hint = f"check the url (it can be set with {variable}) and the headers set for {provider}"
    return ProviderConfigurationError(
        provider, message, url=url, hint=f"retrying cannot help: {hint}"
    )


# A socket timeout set to what was left of the deadline fires at, not after, the deadline
# as the monotonic clock reads it a moment later; this much early still counts.
_CLOCK_SLACK = 0.01

_NETWORK_ERRNOS = frozenset(
    {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN, errno.EADDRNOTAVAIL}
)


def _network_kind(exc: BaseException) -> str | None:
    """Which network failure ``exc`` is: ``timeout``, ``tls``, ``proxy``, ``request`` (an
    invalid url, scheme or header), ``network`` (anything else on the way); None for what
    is not a network failure."""
    # requests' and urllib3's exceptions exist only once they are imported: no need to
    # import them to learn that a plugin's RuntimeError is none of them.
    if "urllib3" in sys.modules:
        kind = _library_kind(exc)
        if kind is not None:
            return kind
    if "aiohttp" in sys.modules:
        kind = _aiohttp_kind(exc)
        if kind is not None:
            return kind
    lean = sys.modules.get("providerhub._transports.lean")
    if lean is not None and isinstance(exc, lean.RequestError):
        return "request"
    asyncio = sys.modules.get("asyncio")
    if asyncio is not None and isinstance(exc, asyncio.TimeoutError):
        return "timeout"  # before Python 3.11 not the builtin TimeoutError
    ssl = sys.modules.get("ssl")
    if ssl is not None and isinstance(exc, (ssl.SSLError, ssl.CertificateError)):
        return "tls"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "timeout"
    if isinstance(exc, (ConnectionError, socket.gaierror, socket.herror)):
        return "network"
    if isinstance(exc, OSError) and exc.errno in _NETWORK_ERRNOS:
        return "network"
    client = sys.modules.get("http.client")
    if client is not None and isinstance(exc, client.HTTPException):
        return "network"
    urlerror = sys.modules.get("urllib.error")
    if (
        urlerror is not None
        and isinstance(exc, urlerror.URLError)
        and not isinstance(exc, urlerror.HTTPError)  # an answer, not a network failure
    ):
        inner = exc.reason
        return (_network_kind(inner) if isinstance(inner, BaseException) else None) or "network"
    return None


def _library_kind(exc: BaseException) -> str | None:
    import requests.exceptions as rq
    import urllib3.exceptions as u3

    if any(
        isinstance(e, (rq.ProxyError, rq.InvalidProxyURL, u3.ProxyError, u3.ProxySchemeUnknown))
        for e in _causes(exc)
    ) or (isinstance(exc, rq.InvalidSchema) and "socks" in str(exc).lower()):
        return "proxy"
    if isinstance(exc, (rq.Timeout, u3.TimeoutError)) and not isinstance(
        exc,
        u3.NewConnectionError,  # urllib3 makes a refused connection a kind of timeout
    ):
        return "timeout"
    if isinstance(exc, (rq.SSLError, u3.SSLError)):
        return "tls"
    if isinstance(
        exc,
        (
            rq.InvalidURL,
            rq.InvalidSchema,
            rq.MissingSchema,
            rq.URLRequired,
            rq.InvalidHeader,
            u3.LocationValueError,
            u3.ProxySchemeUnsupported,
        ),
    ):
        return "request"
    if isinstance(exc, (rq.RequestException, u3.HTTPError)):
        return "network"
    return None


def _aiohttp_kind(exc: BaseException) -> str | None:
    """:func:`_library_kind` for aiohttp's exceptions (the asyncio transport's)."""
    import aiohttp

    if isinstance(exc, (aiohttp.ClientProxyConnectionError, aiohttp.ClientHttpProxyError)):
        return "proxy"
    if isinstance(exc, (aiohttp.ClientSSLError, aiohttp.ServerFingerprintMismatch)):
        return "tls"
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return "timeout"
    invalid: tuple[type[BaseException], ...] = (aiohttp.InvalidURL,)
    non_http = getattr(aiohttp, "NonHttpUrlClientError", None)  # aiohttp 3.10 on
    if non_http is not None:
        invalid += (non_http,)
    if isinstance(exc, invalid):
        return "request"
    if isinstance(exc, aiohttp.ClientError):
        return "network"  # refused, reset, disconnected, a broken body or response head
    return None


def _is_connect_timeout(exc: BaseException) -> bool:
    requests = sys.modules.get("requests")
    if requests is not None and isinstance(exc, requests.ConnectTimeout):
        return True
    lean = sys.modules.get("providerhub._transports.lean")
    if lean is not None and isinstance(exc, lean.ConnectTimeout):
        return True
    aiohttp = sys.modules.get("aiohttp")
    connect = getattr(aiohttp, "ConnectionTimeoutError", None)  # aiohttp 3.10 on
    return connect is not None and isinstance(exc, connect)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps (urllib3's ``reason``, exceptions among its arguments,
    its context), a few levels deep."""
    seen: list[BaseException] = [exc]
    for current in seen:
        yield current
        if len(seen) > 8:
            return
        for inner in (getattr(current, "reason", None), *current.args, current.__context__):
            if isinstance(inner, BaseException) and all(inner is not s for s in seen):
                seen.append(inner)


def _reason(exc: BaseException, secrets: list[str | None]) -> str:
    """The innermost reason of a wrapped network error, on one line, redacted."""
    inner: BaseException = exc
    for _ in range(5):
        # urllib3 keeps the cause in ``reason``, aiohttp's connector errors in ``os_error``.
        nxt = getattr(inner, "reason", None) or getattr(inner, "os_error", None)
        nxt = nxt or inner.__context__
        if not isinstance(nxt, BaseException):
            break
        inner = nxt
    if isinstance(inner, OSError) and inner.errno == errno.ECONNREFUSED:
        return "connection refused"
    text = one_line(inner, typed=False)
    for marker in ("Connection refused", "Connection reset", "Name or service not known"):
        if marker.lower() in text.lower():
            return marker.lower()
    return redact(text, secrets)[:160]


# allow_nan=False: NaN and Infinity are not JSON, and a server would refuse the request
# they went out in; they are refused before sending instead, as the caller's mistake.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def dumps(body: Any) -> bytes:
    """``body`` as compact UTF-8 JSON; ``ValueError`` for NaN or an infinity."""
    return _ENCODER.encode(body).encode("utf-8")
