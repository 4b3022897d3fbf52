"""providerhub's errors as OpenAI error responses: the status the openai SDK turns into
the matching exception, and the body ``{"error": {"message", "type", "param", "code"}}``.

| condition | status |
| --- | --- |
| bad JSON, bad messages or parameters, a request no provider can take | 400 |
| every provider asked refused the request as invalid (its 400, 413, 422) | 400 |
| no key or a wrong key | 401 |
| unknown model (the message names close ones) | 404 |
| the request's headers or body not in within the timeouts | 408 |
| body too large | 413 |
| URL too long | 414 |
| request line and headers too large | 431 |
| rate limited (a client key's rpm, or every provider asked) | 429, ``Retry-After`` |
| the providers failed | 502 |
| nothing can serve the model now: cooling down, over capacity | 503, ``Retry-After`` |
| a rate limit cannot be counted: the shared state (Redis) is unreachable and the server \
fails closed | 503, ``Retry-After`` |

What a client is told of a provider's failure is built from the error's type and fields
(the provider's name, the HTTP status, the kind of failure) and says what to do: never the
error's own message, which holds the upstream's address and its words. Those go to the
server's log instead (:func:`log_failure`), redacted, under the request's id, which the
client's message names.
"""

from __future__ import annotations

import logging
import math
import traceback
from collections.abc import Iterable
from datetime import datetime, timezone
from decimal import ROUND_CEILING, Decimal
from typing import TYPE_CHECKING, NamedTuple

from .._spend import plain
from .._state.limits import Refusal
from ..errors import (
    AllProvidersFailedError,
    AuthenticationError,
    InvalidRequestError,
    ModelNotFoundError,
    NoProviderError,
    ProviderConfigurationError,
    ProviderConnectionError,
    ProviderError,
    ProviderHTTPError,
    ProviderResponseError,
    ProvidersCoolingDownError,
    ProviderTimeoutError,
    RateLimitError,
    StreamInterruptedError,
)
from ..plugin import redact

if TYPE_CHECKING:
    from .._hub import Hub
    from ._keys import OverBudget

__all__ = ["Failure", "failure_for", "log_failure"]

logger = logging.getLogger("providerhub.server")  # a stable name for users' logging config


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


def failure_for(
    exc: Exception,
    hub: Hub,
    secrets: Iterable[str],
    *,
    upstream_timeout: float | None = None,
    request_id: str | None = None,
    mid_answer: bool = False,
) -> Failure:
    """The answer for ``exc``, raised by a completion.

    The caller's own mistakes (a bad request, needs no provider meets) are told as
    providerhub wrote them, with ``secrets`` (the upstream credentials) taken out, and
    anything that looks like one; an unknown model names close ones, or the route that
    lists them. A provider's failure is told by its kind (see :func:`describe`), with the
    server's ``upstream_timeout`` for a timeout and the ``request_id`` its details are
    logged under; ``mid_answer`` says that the answer had begun (a stream's error event).
    """
    if isinstance(exc, InvalidRequestError):
        # The library's words, which may quote what the client sent (a role, a key): cut
        # to a size that says what is wrong, whatever the client sent.
        message = _echo(redact(str(exc), secrets), MESSAGE_LIMIT)
        return Failure(400, "invalid_request_error", "invalid_request", message, exc.param)
    if isinstance(exc, ModelNotFoundError):
        # Not the library's message, which sends its reader to the command line.
        close = " or ".join(repr(s) for s in exc.suggestions)
        message = f"no provider lists the model {_echo(exc.model)!r}; " + (
            f"did you mean {close}?" if close else "GET /v1/models lists the models served here"
        )
        return Failure(404, "invalid_request_error", "model_not_found", message, "model")
    if isinstance(exc, NoProviderError):
        return _no_provider(exc, hub, redact(str(exc), secrets), secrets)
    logged = _logged(request_id)
    if isinstance(exc, RateLimitError) and isinstance(exc.retry_after, Refusal):
        return _uncounted(f"the rate limit of the provider {exc.provider!r}", exc.retry_after)
    if isinstance(exc, RateLimitError):
        message = describe(exc, hub, upstream_timeout) + logged
        wait = _seconds(exc.retry_after)
        return Failure(
            429, "rate_limit_error", "rate_limit_exceeded", message, None, wait, exc.provider
        )
    if isinstance(exc, AllProvidersFailedError):
        errors = list(exc.errors.values())
        count = len(errors)
        message = (
            f"all {count} provider{'s' if count != 1 else ''} of the model {_echo(exc.model)!r} "
            "failed: " + "; ".join(describe(e, hub, upstream_timeout) for e in errors) + logged
        )
        if errors and all(isinstance(e, RateLimitError) for e in errors):
            waits = [e.retry_after for e in errors if isinstance(e, RateLimitError)]
            known = [w for w in waits if w is not None]
            wait = _seconds(min(known) if known else None)
            return Failure(429, "rate_limit_error", "rate_limit_exceeded", message, None, wait)
        if errors and all(e.request_refused for e in errors):
            return Failure(400, "invalid_request_error", "invalid_request", message)
        return Failure(502, "upstream_error", "upstream_failed", message)
    if isinstance(exc, ProviderError):
        message = describe(exc, hub, upstream_timeout)
        if mid_answer:
            message = "the stream broke off mid-answer: " + message
        elif exc.request_refused:  # the client's request, refused upstream: not a 502
            return Failure(
                400,
                "invalid_request_error",
                "invalid_request",
                message + logged,
                provider=exc.provider,
            )
        return Failure(
            502, "upstream_error", "upstream_failed", message + logged, provider=exc.provider
        )
    return Failure(500, "server_error", "internal_error", "the server failed" + logged)


def describe(err: ProviderError, hub: Hub, upstream_timeout: float | None = None) -> str:
    """What happened to a provider, for a gateway client: its name, the kind of failure
    (and the HTTP status) and what to do, from the error's type and fields alone."""
    name = err.provider
    if isinstance(err, RateLimitError):
        wait = "later" if err.retry_after is None else f"in {_seconds(err.retry_after)} s"
        provider = hub.providers.get(name)
        if err.url is None and provider is not None and provider.limits:
            # The router's own count: nothing was sent.
            return f"{name} is at its rate limit ({provider.limits.describe()}): retry {wait}"
        return f"{name} is rate limiting (HTTP {err.status_code}): retry {wait}"
    if isinstance(err, AuthenticationError):
        return (
            f"{name} refused the server's credential for it (HTTP {err.status_code}): the "
            "server's operator must set a valid one"
        )
    if isinstance(err, ProviderHTTPError):
        status = err.status_code
        if status >= 500:
            return f"{name} failed (HTTP {status}): retry later, or use another model"
        if status == 404:
            return (
                f"{name} has no chat completions endpoint where the server asks it (HTTP 404): "
                "the server's operator must check its url"
            )
        if status < 400:
            return (
                f"{name} answered with a redirect (HTTP {status}), which the server does not "
                "follow: the server's operator must check its url"
            )
        return f"{name} rejected the request (HTTP {status}): check the request's parameters"
    if isinstance(err, ProviderTimeoutError):
        limit = (
            ""
            if upstream_timeout is None
            else f" (the server's upstream deadline is {upstream_timeout:g} s per request, "
            "retries included)"
        )
        return f"{name} did not answer in time{limit}: retry later, or ask for a shorter answer"
    if isinstance(err, ProviderConfigurationError):
        return (
            f"{name} cannot be reached as the server is set up for it (TLS, its url or a "
            "proxy): the server's operator must fix it"
        )
    if isinstance(err, ProviderConnectionError):
        return (
            f"{name} could not be reached (the connection was refused, reset or timed out "
            "on the way): retry later, or use another model"
        )
    if isinstance(err, StreamInterruptedError):
        return f"the connection to {name} broke mid-answer, so the answer is incomplete: retry"
    if isinstance(err, ProviderResponseError):
        return (
            f"{name} gave an answer that could not be used (an error in its answer, or not "
            "an OpenAI-compatible one): retry later, or use another model"
        )
    return f"{name} failed in its plugin: use another model, or tell the server's operator"


def _logged(request_id: str | None) -> str:
    return (
        ""
        if request_id is None
        else f" (the server's log has the details: request id {request_id})"
    )


def log_failure(
    exc: BaseException, failure: Failure, request_id: str, secrets: Iterable[str]
) -> None:
    """One line on the ``providerhub.server`` logger for a request answered with
    ``failure``: the request id, the status and the whole error (with the upstream's
    address and words, which the client was not told), redacted. WARNING for what the
    operator may have to look at (429 and 5xx), INFO for the client's own mistakes; a
    failure of the server itself (500) has its traceback, redacted too."""
    level = logging.WARNING if failure.status >= 500 or failure.status == 429 else logging.INFO
    if not logger.isEnabledFor(level):
        return
    detail = " | ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    text = f"request_id={request_id} status={failure.status} {type(exc).__name__}: {detail}"
    if failure.status == 500:
        text += "\n" + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    logger.log(level, "%s", redact(text, secrets))


def _uncounted(what: str, wait: float) -> Failure:
    # Not 429: nothing says the client is over a limit, only that it cannot be counted.
    return Failure(
        503,
        "server_error",
        "shared_state_unavailable",
        f"{what} cannot be counted: the server's shared state (Redis) is unreachable, and "
        f"the server refuses such requests until it is back; retry in {_seconds(wait)} s",
        retry_after=_seconds(wait),
    )


def _no_provider(exc: NoProviderError, hub: Hub, message: str, secrets: Iterable[str]) -> Failure:
    if isinstance(exc, ProvidersCoolingDownError):
        # Refused before anything was sent: the error holds when each provider is back.
        return Failure(
            503,
            "server_error",
            "no_provider_available",
            message,
            retry_after=_seconds(exc.retry_after),
        )
    # Not one provider was left out for its cooldown alone (that is the error above), so
    # a cooldown is no reason here, and no wait helps: a provider the operator must fix
    # (no credential, not working, disabled) is 503 with no Retry-After; one left out only
    # for what the request asks (streaming, tools, images) is 400, since the client can
    # change the request, even while that provider cools down after other calls.
    server_side = False
    reasons = dict(exc.reasons)
    for name in exc.reasons:
        provider = hub.providers.get(name)
        if provider is None:
            continue
        no_credential = provider.needs_auth and not provider.credential(None)
        if not provider.working or provider.disabled or no_credential:
            server_side = True
        # The library's reasons tell a Python caller what to pass (auth=, stream=False);
        # a gateway client is told what fits it: the credential is the operator's to set.
        if no_credential:
            reasons[name] = "needs a credential, which the server's operator has not set"
        elif exc.stream and not provider.supports_stream:
            reasons[name] = 'cannot stream: send "stream": false'
    if reasons != exc.reasons:
        message = redact(str(NoProviderError(exc.model, reasons, stream=exc.stream)), secrets)
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


def rate_limited(name: str, wait: float) -> Failure:
    """The answer to a client key at its ``rpm`` (``wait``: whole seconds), or, for a
    :class:`~providerhub._state.limits.Refusal` (the shared state fails closed and is down),
    the 503 saying that its rpm cannot be counted."""
    if isinstance(wait, Refusal):
        return _uncounted(f"the requests-per-minute limit of the client key {name!r}", wait)
    wait = _seconds(wait)
    return Failure(
        429,
        "rate_limit_error",
        "rate_limit_exceeded",
        f"the client key {name!r} is over its requests-per-minute limit; retry in {wait} s",
        retry_after=wait,
    )


def over_budget(over: OverBudget | Refusal) -> Failure:
    """The answer to a client key that has spent its budget for the period: 429, saying
    so and when it resets, with ``Retry-After``; or, for a
    :class:`~providerhub._state.limits.Refusal`, the 503 saying that its spend cannot be
    counted."""
    if isinstance(over, Refusal):
        return _uncounted("the budget of this client key", over)
    resets = datetime.fromtimestamp(over.resets, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Failure(
        429,
        "insufficient_quota",
        "budget_exceeded",
        f"the client key {over.name!r} has spent {_dollars(over.spent)} USD of its budget of "
        f"{_dollars(over.budget)} USD for this {over.period} (UTC); the budget resets at "
        f"{resets}, in {over.retry_after} s",
        retry_after=over.retry_after,
    )


def _dollars(picodollars: int) -> str:
    # To the hundredth of a cent, rounded up: a spend just over the budget never reads as
    # the budget itself.
    cents = Decimal(picodollars).scaleb(-12).quantize(Decimal("0.0001"), ROUND_CEILING)
    return plain(cents)


ECHO_LIMIT = 200
"""Characters of a client's own path, method or model name an error answer repeats: enough
to recognise it, and an answer stays small whatever was sent."""


MESSAGE_LIMIT = 2000
"""Characters of a message about the client's own mistake: room for the library's longest
(a list of the parameters a provider takes), and no more of what the client sent."""


def _echo(value: str, limit: int = ECHO_LIMIT) -> str:
    return value if len(value) <= limit else value[:limit] + "..."


def not_found(path: str) -> Failure:
    return Failure(404, "invalid_request_error", "not_found", f"no route {_echo(path)}")


def method_not_allowed(method: str, path: str, allow: str) -> Failure:
    return Failure(
        405,
        "invalid_request_error",
        "method_not_allowed",
        f"{_echo(method)} is not allowed on {_echo(path)}; allowed: {allow}",
    )


def origin_not_allowed(origin: str) -> Failure:
    return Failure(
        403,
        "invalid_request_error",
        "origin_not_allowed",
        f"the origin {origin!r} may not call this server from a browser (the server's "
        "cors_origins setting lists the origins that may)",
    )


def timed_out(what: str, seconds: float) -> Failure:
    return Failure(
        408,
        "invalid_request_error",
        "request_timeout",
        f"the request's {what} did not arrive within {seconds:g} s",
    )


def head_too_large(limit: int, url: bool) -> Failure:
    if url:
        return Failure(
            414,
            "invalid_request_error",
            "uri_too_long",
            f"the URL is longer than this server takes ({limit} bytes with the headers)",
        )
    return Failure(
        431,
        "invalid_request_error",
        "request_header_fields_too_large",
        f"the request line and headers are larger than this server takes ({limit} bytes)",
    )


def malformed(reason: str) -> Failure:
    return Failure(400, "invalid_request_error", "invalid_request", reason)


def shutting_down() -> Failure:
    return Failure(
        503,
        "server_error",
        "server_shutting_down",
        "the server stopped before this answer was complete; retry the request",
        retry_after=1,
    )
