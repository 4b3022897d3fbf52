"""providerhub's errors as OpenAI error responses: the status the openai SDK turns into
the matching exception, and the body ``{"error": {"message", "type", "param", "code"}}``.

| condition | status |
| --- | --- |
| bad JSON, bad messages or parameters, a request no provider can take | 400 |
| every provider asked refused the request as invalid (its 400, 413, 422) | 400 |
| no key or a wrong key | 401 |
| unknown model (the message names close ones) | 404 |
| body too large | 413 |
| rate limited (a client key's rpm, or every provider asked) | 429, ``Retry-After`` |
| the providers failed | 502 |
| nothing can serve the model now: cooling down, over capacity | 503, ``Retry-After`` |
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

from ..errors import (
    AllProvidersFailedError,
    InvalidRequestError,
    ModelNotFoundError,
    NoProviderError,
    ProviderError,
    RateLimitError,
)
from ..plugin import redact

if TYPE_CHECKING:
    from .._hub import Hub

__all__ = ["Failure", "failure_for"]


class Failure(NamedTuple):
    """An error answer: ``status``, the error's ``type``, ``code`` and ``param``, its
    ``message`` (redacted), ``retry_after`` seconds (or None) and the ``provider`` that
    failed (or None)."""

    status: int
    type: str
    code: str | None
    message: str
    param: str | None = None
    retry_after: int | None = None
    provider: str | None = None

    def body(self) -> dict[str, dict[str, str | None]]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def _seconds(value: float | None, default: int = 1) -> int:
    return default if value is None else max(1, math.ceil(value))


def failure_for(exc: Exception, hub: Hub, secrets: Iterable[str]) -> Failure:
    """The answer for ``exc``, raised by a completion; ``secrets`` (the upstream
    credentials) are taken out of its message, with anything that looks like one."""
    message = redact(str(exc), secrets)
    if isinstance(exc, InvalidRequestError):
        return Failure(400, "invalid_request_error", "invalid_request", message)
    if isinstance(exc, ModelNotFoundError):
        return Failure(404, "invalid_request_error", "model_not_found", message, "model")
    if isinstance(exc, NoProviderError):
        return _no_provider(exc, hub, message)
    if isinstance(exc, RateLimitError):
        return Failure(
            429,
            "rate_limit_error",
            "rate_limit_exceeded",
            message,
            retry_after=_seconds(exc.retry_after),
            provider=exc.provider,
        )
    if isinstance(exc, AllProvidersFailedError):
        errors = list(exc.errors.values())
        if errors and all(isinstance(e, RateLimitError) for e in errors):
            waits = [e.retry_after for e in errors if isinstance(e, RateLimitError)]
            known = [w for w in waits if w is not None]
            wait = _seconds(min(known) if known else None)
            return Failure(429, "rate_limit_error", "rate_limit_exceeded", message, None, wait)
        if errors and all(e.request_refused for e in errors):
            return Failure(400, "invalid_request_error", "invalid_request", message)
        return Failure(502, "upstream_error", "upstream_failed", message)
    if isinstance(exc, ProviderError):
        if exc.request_refused:  # the client's request, refused upstream: not a 502
            return Failure(
                400, "invalid_request_error", "invalid_request", message, provider=exc.provider
            )
        return Failure(502, "upstream_error", "upstream_failed", message, provider=exc.provider)
    return Failure(500, "server_error", "internal_error", "the server failed: " + message)


def _no_provider(exc: NoProviderError, hub: Hub, message: str) -> Failure:
    # Providers cooling down may take calls soon: 503 with the shortest wait. A provider
    # the operator must fix (no credential, not working, disabled) is 503 too, without a
    # wait, since retrying cannot help soon. Left out only for what the request asks
    # (streaming, tools, images): the client can change the request, so 400.
    waits: list[float] = []
    server_side = False
    for name in exc.reasons:
        provider = hub.providers.get(name)
        if provider is None:
            continue
        cooling = hub.health.cooling(name)
        if cooling is not None:
            waits.append(cooling.remaining)
        elif (
            not provider.working
            or provider.disabled
            or (provider.needs_auth and not provider.credential(None))
        ):
            server_side = True
    if waits:
        return Failure(
            503, "server_error", "no_provider_available", message, retry_after=_seconds(min(waits))
        )
    if server_side:
        return Failure(503, "server_error", "no_provider_available", message)
    return Failure(400, "invalid_request_error", "model_not_supported", message)


def too_large(limit: int) -> Failure:
    return Failure(
        413,
        "invalid_request_error",
        "request_too_large",
        f"the request body is larger than this server takes ({limit} bytes)",
    )


def bad_request(message: str, param: str | None = None) -> Failure:
    return Failure(400, "invalid_request_error", "invalid_request", message, param)


def unauthorized(given: bool) -> Failure:
    message = (
        "incorrect API key provided" if given else "no API key provided"
    ) + ": pass one of the server's client keys as 'Authorization: Bearer KEY'"
    return Failure(401, "invalid_request_error", "invalid_api_key", message)


def over_capacity(limit: int) -> Failure:
    return Failure(
        503,
        "server_error",
        "over_capacity",
        f"the server is serving as many requests as it takes at once ({limit}); retry shortly",
        retry_after=1,
    )


def rate_limited(name: str, wait: int) -> Failure:
    return Failure(
        429,
        "rate_limit_error",
        "rate_limit_exceeded",
        f"the client key {name!r} is over its requests-per-minute limit; retry in {wait} s",
        retry_after=wait,
    )


def not_found(path: str) -> Failure:
    return Failure(404, "invalid_request_error", "not_found", f"no route {path}")


def method_not_allowed(method: str, path: str) -> Failure:
    return Failure(405, "invalid_request_error", "method_not_allowed", f"{method} {path}")
