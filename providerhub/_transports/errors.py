"""The one map of foreign errors: whatever ``requests``, ``urllib3``, ``aiohttp``,
``ssl``, ``socket`` or ``urllib`` raise while a provider is asked becomes providerhub's
typed error here (:func:`error_for_exception`; :class:`Translation` is its ``with``
form), every message redacted with the call's credentials.

A transport raises its library's exceptions, or a typed error it made itself; the
drivers (:mod:`providerhub._http`) read every exchange inside a :class:`Translation`.
A new transport whose exceptions are none of those below adds its rows to
:func:`_network_kind`. Library modules are looked up in ``sys.modules``, never
imported to learn that an exception is not theirs.
"""

from __future__ import annotations

import errno
import socket
import sys
from collections.abc import Iterable, Iterator
from time import monotonic
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .. import _settings as settings
from .._redaction import one_line, redact, safe_url, url_secrets
from ..errors import (
    ProviderConfigurationError,
    ProviderConnectionError,
    ProviderError,
    ProviderHubError,
    ProviderResponseError,
    ProviderTimeoutError,
    StreamInterruptedError,
)

if TYPE_CHECKING:
    from types import TracebackType

__all__ = [
    "Translation",
    "configuration_error",
    "error_for_exception",
    "total_timeout",
]


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
        return configuration_error(provider, kind, shown, reason)
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


def configuration_error(
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


def total_timeout(provider: str, url: str) -> ProviderTimeoutError:
    """The error of a call whose total timeout passed while its answer was arriving."""
    return ProviderTimeoutError(
        provider,
        f"the answer from {url} took longer than the total timeout",
        url=url,
        hint="raise timeout= for long answers",
    )
