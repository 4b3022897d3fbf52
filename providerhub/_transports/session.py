"""A ``requests.Session`` that reads proxy and certificate settings from the environment
once per origin, not once per request.

With ``trust_env`` on (the default), ``requests`` resolves proxies on every request by
scanning the whole environment, twice (``urllib.request.getproxies`` and its bypass
check), a large part of a call's own cost (``docs/benchmarks.md``). The answer depends
only on the request's origin, the session's own settings and a handful of variables, so it
is kept, keyed by exactly those; change any of them and it is worked out afresh. Imported
only when the first request is made, with ``requests``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests

from .._speedups import environment_reader

if TYPE_CHECKING:
    from requests.sessions import _Settings

__all__ = ["ENVIRONMENT", "Session"]

ENVIRONMENT = (
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
    "REQUEST_METHOD",  # urllib ignores HTTP_PROXY under CGI (httpoxy)
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
)
"""The variables that decide what ``requests`` takes from the environment for an http(s)
request: its scheme's proxy, ``all_proxy``, ``no_proxy`` and the CA bundle."""

_MAX_ENTRIES = 256

environment = environment_reader(ENVIRONMENT)
"""The values of :data:`ENVIRONMENT` now, in one pass (see :mod:`providerhub._speedups`)."""


class Session(requests.Session):
    """:class:`requests.Session`, with the environment's settings kept per origin."""

    def __init__(self) -> None:
        super().__init__()
        self._environment_settings: dict[tuple[Any, ...], _Settings] = {}

    def merge_environment_settings(
        self,
        url: str | bytes | None,
        proxies: Any,
        stream: Any,
        verify: Any,
        cert: Any,
    ) -> _Settings:
        if not self.trust_env or proxies or not isinstance(url, str):
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        parts = urlsplit(url)
        try:
            key = (
                parts.scheme,
                parts.netloc,
                stream,
                verify,
                cert,
                self.stream,
                self.verify,
                self.cert,
                tuple(sorted(self.proxies.items())),
                environment(),
            )
            settings = self._environment_settings.get(key)
        except TypeError:
            # An unhashable setting (a dict in verify, say): nothing to keep it under.
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        if settings is None:
            settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
            if len(self._environment_settings) >= _MAX_ENTRIES:
                self._environment_settings.clear()
            self._environment_settings[key] = settings
        # requests merges these into the send() arguments; a copy keeps the kept one intact.
        copy = settings.copy()
        copy["proxies"] = dict(settings["proxies"])
        return copy
