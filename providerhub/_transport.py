"""HTTP for providers: pooled sessions, reading bodies within limits, and turning what the
network and the server did into providerhub's typed errors.

This module knows HTTP, not any API on top of it (that is :mod:`providerhub.openai_compat`).
``requests`` is imported only when a session is first needed, so importing providerhub and
listing providers stays fast.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import socket
import threading
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from email.utils import parsedate_to_datetime
from time import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from . import _settings as settings
from .errors import (
    AuthenticationError,
    ProviderConnectionError,
    ProviderError,
    ProviderHTTPError,
    ProviderResponseError,
    ProviderTimeoutError,
    RateLimitError,
)

if TYPE_CHECKING:
    import requests

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "POOL_SIZE",
    "READ_SIZE",
    "Abort",
    "CallAborted",
    "body_chunks",
    "current_abort",
    "default_session",
    "dumps",
    "error_for_exception",
    "error_for_status",
    "excerpt",
    "new_session",
    "read_body",
    "redact",
    "safe_url",
    "set_abort",
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
    :mod:`providerhub._session`)."""
    from requests.adapters import HTTPAdapter

    from ._session import Session

    session = Session()
    adapter = HTTPAdapter(pool_connections=8, pool_maxsize=pool_size, max_retries=0)
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
    :meth:`abort`, which shuts down the sockets of the responses registered so far, so
    the worker's blocked read returns at once, and wakes the router if it is waiting to
    retry; the router asks no provider after that, and the worker ends.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._responses: list[requests.Response] = []
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

    def abort(self) -> None:
        with self._lock:
            self._event.set()
            responses, self._responses = self._responses, []
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
    connection = getattr(response.raw, "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is None:
        response.close()  # not mid-read on a socket we can reach: closing is enough
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        # Already closed or reset by the peer: either way the reader is not blocked.
        logger.debug("socket of %s was already closed", safe_url(response.url))


@functools.lru_cache(maxsize=256)
def safe_url(url: str) -> str:
    """``url`` without user info and query, fit for an error message."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


_BEARER = re.compile(r"(?i)(bearer|token|api[_-]?key)([\s:=\"']+)[A-Za-z0-9._~+/=-]{6,}")
_QUERY_VALUE = re.compile(r"(?<=[?&])([A-Za-z0-9_.-]+)=[^\s&)'\"]+")


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with every given secret, anything that looks like a bearer token or API
    key, and every query-string value (where keys often travel), replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = _QUERY_VALUE.sub(r"\1=***", text)
    return _BEARER.sub(r"\1\2***", text)


def excerpt(body: bytes | str, secrets: Iterable[str | None] = ()) -> str:
    """A short, one-line, redacted excerpt of a response body."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = " ".join(text.split())
    if len(text) > EXCERPT_CHARS:
        text = text[:EXCERPT_CHARS] + "..."
    return redact(text, secrets)


READ_SIZE = 64 * 1024


def body_chunks(response: requests.Response) -> Iterator[bytes]:
    """The body's bytes as they arrive, for a streamed response.

    A chunked body is read one HTTP chunk at a time with urllib3's ``read_chunked``, the
    cheapest read per call it has (servers that flush every token send one event per
    chunk, so this cost is paid per event); any other body with ``read1``, which returns
    what has arrived instead of waiting for a full buffer.
    """
    raw = response.raw
    if getattr(raw, "chunked", False) and raw.supports_chunked_reads():
        chunks: Iterator[bytes] = raw.read_chunked(READ_SIZE, decode_content=True)
        return chunks
    read1 = getattr(raw, "read1", None)
    if read1 is not None:
        return iter(lambda: read1(READ_SIZE), b"")
    return raw.stream(READ_SIZE, decode_content=True)  # urllib3 1.x


def read_body(response: requests.Response, limit: int, provider: str) -> bytes:
    """The whole body, or :class:`ProviderResponseError` once it passes ``limit`` bytes."""
    raw = response.raw
    data = raw.read(limit + 1, decode_content=True)
    if len(data) > limit:
        raise ProviderResponseError(
            provider,
            f"the answer is larger than {limit} bytes",
            url=safe_url(response.url),
            hint="raise max_body_bytes if such answers are expected",
        )
    return bytes(data)


def error_for_status(
    provider: str,
    response: requests.Response,
    secrets: Iterable[str | None] = (),
    *,
    credential_variable: str | None = None,
) -> ProviderError:
    """The typed error for an HTTP error status, with an excerpt of the body; an
    authentication error names ``credential_variable`` (by default
    ``PROVIDERHUB_<NAME>_API_KEY``) as the one to set."""
    secrets = list(secrets)
    status = response.status_code
    url = safe_url(response.url)
    try:
        body = response.raw.read(64 * 1024, decode_content=True)
    except Exception:
        # The excerpt is a courtesy; the status alone is the error.
        body = b""
    found = _error_message(body)
    detail = excerpt(found if found is not None else body, secrets) or None
    reason = f"HTTP {status} {response.reason or ''}".rstrip()
    message = f"{reason} from {url}"
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
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
        url=url,
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


def _error_message(body: bytes) -> str | None:
    """The ``error.message`` of an OpenAI-style JSON error body, if it is one."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if isinstance(doc, dict):
        err = doc.get("error", doc.get("detail"))
        if isinstance(err, dict):
            err = err.get("message")
        if isinstance(err, str):
            return err
    return None


def error_for_exception(
    provider: str,
    exc: BaseException,
    url: str,
    *,
    started: bool = False,
    secrets: Iterable[str | None] = (),
) -> ProviderError:
    """The typed error for what ``requests``/``urllib3`` raised while talking to ``url``.

    ``started`` says whether the answer had begun to arrive, which turns a dropped
    connection into an interrupted stream.
    """
    import requests
    import urllib3.exceptions as u3

    from .errors import StreamInterruptedError

    url = safe_url(url)
    reason = _short(exc, list(secrets))
    if isinstance(exc, (requests.Timeout, u3.TimeoutError, TimeoutError)):
        phase = "connecting" if isinstance(exc, requests.ConnectTimeout) else "waiting"
        return ProviderTimeoutError(
            provider,
            f"timed out {phase} for {url}",
            url=url,
            hint="the service is slow or down: raise timeout= or try another provider",
        )
    if started:
        return StreamInterruptedError(
            provider,
            f"the connection to {url} broke mid-answer ({reason})",
            url=url,
            hint="the answer is incomplete: try again",
        )
    return ProviderConnectionError(
        provider,
        f"could not connect to {url} ({reason})",
        url=url,
        hint=f"is the service up, and is the url right? it can be set with "
        f"{settings.url_variable(provider)}",
    )


def _short(exc: BaseException, secrets: list[str | None]) -> str:
    """The innermost reason of a wrapped network error, on one line."""
    inner: BaseException = exc
    for _ in range(5):
        nxt = getattr(inner, "reason", None) or inner.__context__
        if not isinstance(nxt, BaseException):
            break
        inner = nxt
    text = str(inner) or type(inner).__name__
    for marker in ("Connection refused", "Connection reset", "Name or service not known"):
        if marker.lower() in text.lower():
            return marker.lower()
    return redact(" ".join(text.split()), secrets)[:160]


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def dumps(body: Any) -> bytes:
    """``body`` as compact UTF-8 JSON."""
    return _ENCODER.encode(body).encode("utf-8")
