"""Every error providerhub raises, in one hierarchy.

Catch :class:`ProviderHubError` to catch them all. The tree::

    ProviderHubError
    ├── InvalidRequestError          (also ValueError)  the caller's bad input to a call,
    │                                                   raised before any network call;
    │                                                   ``.param``, the argument at fault
    ├── ConfigurationError           (also ValueError)  how providerhub is set up is wrong: an
    │   │                                               environment variable, the configuration
    │   │                                               file, a ``Hub()`` argument, the Redis
    │   │                                               URL, the gateway's settings
    │   └── PluginError                                 a plugin, or a provider it declares,
    │                                                   breaks the contract: a missing field,
    │                                                   a name taken, a bad rate limit
    ├── ModelNotFoundError           (also LookupError) no provider lists the model
    ├── NoProviderError              (also LookupError) the model is known, but no provider
    │   │                                                fits these needs (stream, auth, ...)
    │   └── ProvidersCoolingDownError                   each that fits is cooling down: nothing
    │                                                   was sent; ``.retry_after``, ``.waits``
    ├── ProviderError                                   one provider failed; ``.provider``
    │   ├── ProviderConnectionError                     could not connect, connection reset
    │   │   └── ProviderConfigurationError              no retry can help: TLS or certificate,
    │   │                                               an invalid url or scheme, the proxy
    │   ├── ProviderTimeoutError                        connect, read or total deadline passed
    │   ├── ProviderHTTPError                           HTTP error status, or a redirect not
    │   │                                               followed; ``.status_code``,
    │   │                                               ``.retry_after``
    │   │   ├── AuthenticationError                     401/403: missing or rejected credential
    │   │   └── RateLimitError                          429; ``.retry_after`` in seconds
    │   ├── ProviderResponseError                       malformed answer: not JSON, an HTML page,
    │   │                                               no ``choices``, an error event
    │   └── StreamInterruptedError                      a stream cut off before its end
    ├── AllProvidersFailedError                         every candidate failed; ``.errors``
    └── StructuredAnswerError                           the answer holds tool calls, which
                                                        ``create()``'s text cannot carry;
                                                        ``.completion`` holds it all

Each :class:`ProviderError` says whether sending the same request again may pass, in
``transient``: connection failures, timeouts, interrupted streams and HTTP 429, 500, 502,
503 and 504 are; everything else, :class:`ProviderConfigurationError` among them, is not.
The router retries only transient failures. ``request_refused`` says that the provider
refused the request itself as invalid (HTTP 400, 413 or 422): the caller's mistake (a
``temperature`` out of range, a parameter the server does not take, a request too large
for it), which the breaker does not count against the provider (see
:mod:`providerhub._state.health`).

:class:`ConfigurationError` is apart from :class:`InvalidRequestError`, not below it,
because the two are for different people: a bad request is its caller's to fix (the gateway
answers it with a 400 that quotes it), a bad setup is the operator's or the plugin author's
(the gateway answers a client 500 and tells its log, the command line says it in one line
and exits with status 2). A program that catches its own bad input does not swallow a
broken deployment, and one that catches ``ConfigurationError`` at start-up does not swallow
a bad request. Both stay ``ValueError``s, as they were. :class:`ProviderConfigurationError`
is not a ``ConfigurationError``: it is found only when a provider is called (a TLS
handshake, a url or a proxy that does not work), is that provider's failure, and the router
falls back from it as from any :class:`ProviderError`.

Messages are meant for the person running the program: they name the provider, say what
happened, and say what to do. They never contain a credential.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from .types import ChatCompletion

__all__ = [
    "AllProvidersFailedError",
    "AuthenticationError",
    "ConfigurationError",
    "InvalidRequestError",
    "ModelNotFoundError",
    "NoProviderError",
    "PluginError",
    "ProviderConfigurationError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderHTTPError",
    "ProviderHubError",
    "ProviderResponseError",
    "ProviderTimeoutError",
    "ProvidersCoolingDownError",
    "RateLimitError",
    "StreamInterruptedError",
    "StructuredAnswerError",
]


class ProviderHubError(Exception):
    """Root of every error providerhub raises."""


class InvalidRequestError(ProviderHubError, ValueError):
    """The caller's input to a call is wrong (an argument of ``create()``, a request to the
    gateway); nothing was sent anywhere.

    ``param`` names the argument or request field at fault (``"messages"``,
    ``"temperature"``, ...) when one is, else None; the gateway sends it as OpenAI's
    ``param``.
    """

    def __init__(self, message: str = "", *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class ConfigurationError(ProviderHubError, ValueError):
    """How providerhub is set up is wrong, whoever called: a ``PROVIDERHUB_*`` variable or
    the configuration file holds a value it cannot use, a ``Hub()`` or ``RedisState()``
    argument is out of range, an alias clashes, the gateway's settings are invalid. Raised
    when the setting is read (building a hub, starting the gateway), before any network
    call; the message names the setting and what it takes.

    ``setting`` names the setting at fault (a declaration's field, say) when the raiser
    gives it apart from the message, else None.
    """

    def __init__(self, message: str = "", *, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


class PluginError(ConfigurationError):
    """A plugin, or a provider that a plugin (or the program, by ``hub.register``)
    declares, breaks the provider contract: a required field missing, a name already
    taken, a rate limit that is not one, a module that fails to import. The hub skips such
    a plugin and lists it in ``plugin_errors``; registering one by hand raises this.
    """


class ModelNotFoundError(ProviderHubError, LookupError):
    """No registered provider lists the model.

    ``suggestions`` holds the closest known model names (possibly none).
    """

    def __init__(self, model: str, suggestions: Sequence[str] = (), *, hint: str = "") -> None:
        self.model = model
        self.suggestions = list(suggestions)
        message = f"no provider lists the model {model!r}"
        if self.suggestions:
            message += "; did you mean " + " or ".join(repr(s) for s in self.suggestions) + "?"
        else:
            message += "; run 'providerhub models' to see the models installed providers serve"
        if hint:
            message += f" ({hint})"
        super().__init__(message)


class NoProviderError(ProviderHubError, LookupError):
    """The model is known, but no provider serving it fits the request's needs.

    ``reasons`` maps each provider that serves the model to why it was excluded.
    """

    def __init__(self, model: str, reasons: Mapping[str, str], *, stream: bool = False) -> None:
        self.model = model
        self.reasons = dict(reasons)
        self.stream = stream
        lines = [self._headline()]
        lines += [f"  {name}: {why}" for name, why in self.reasons.items()]
        super().__init__("\n".join(lines))

    def _headline(self) -> str:
        return f"no provider can serve model {self.model!r} for this request:"


class ProvidersCoolingDownError(NoProviderError):
    """Every provider that could serve the request is cooling down after failures, or is
    being probed by another call, so the call was refused before any request was sent.

    ``waits`` maps each of them to the seconds until it takes a call again (0 while its
    probe is under way: as soon as the probe answers); ``retry_after`` is the soonest of
    them. ``reasons`` says, as for :class:`NoProviderError`, why each provider serving the
    model was left out.
    """

    def __init__(
        self,
        model: str,
        reasons: Mapping[str, str],
        waits: Mapping[str, float],
        *,
        stream: bool = False,
    ) -> None:
        if not waits:
            raise ValueError("waits must name at least one provider")
        self.waits = {name: max(0.0, wait) for name, wait in waits.items()}
        self.retry_after = min(self.waits.values())
        """Seconds until the first of them takes a call again."""
        super().__init__(model, reasons, stream=stream)

    def _headline(self) -> str:
        soonest = min(self.waits, key=self.waits.__getitem__)
        if self.retry_after > 0:
            when = f"retry in {math.ceil(self.retry_after)} s, when {soonest} takes calls again"
        else:
            when = f"retry in a moment, when the probe of {soonest} has answered"
        return (
            f"every provider that can serve model {self.model!r} is cooling down after "
            f"failures, so nothing was sent: {when}:"
        )


class ProviderError(ProviderHubError):
    """A provider failed. ``provider`` names it; ``url`` is the address it was asked at.

    ``hint`` says what the caller can do about it, and is part of the message.
    ``transient`` says whether the same request may pass if sent again.
    """

    transient: bool = False
    request_refused: bool = False
    """The provider refused the request itself as invalid, the caller's mistake: not a
    failure of the provider's (see :class:`ProviderHTTPError`)."""

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        url: str | None = None,
        hint: str = "",
        body: str | None = None,
    ) -> None:
        self.provider = provider
        self.url = url
        self.hint = hint
        self.body = body
        self.detail = message
        full = f"{provider}: {message}"
        if body:
            full += f": {body}"
        if hint:
            full += f" ({hint})"
        super().__init__(full)


class ProviderConnectionError(ProviderError):
    """The provider could not be reached, or dropped the connection before answering."""

    transient = True


class ProviderConfigurationError(ProviderConnectionError):
    """The connection cannot work as it is set up, so no retry can help: the TLS handshake
    or the certificate failed (an ``https://`` url to a server that does not speak TLS, an
    untrusted certificate), the url or its scheme is invalid, or the proxy settings are.
    Found when the provider is called: a :class:`ProviderError`, not a
    :class:`ConfigurationError`."""

    transient = False


class ProviderTimeoutError(ProviderError):
    """The provider did not answer, or stopped sending, within the timeout."""

    transient = True


class ProviderHTTPError(ProviderError):
    """The provider answered with an HTTP error status, or with a redirect that was not
    followed (see :func:`providerhub.plugin.chat_completion`), in ``status_code``;
    ``retry_after`` holds the seconds its ``Retry-After`` header asked for, or None.
    It is transient for the statuses in :attr:`transient_statuses`, and
    ``request_refused`` for those in :attr:`refused_statuses`."""

    transient_statuses: ClassVar[frozenset[int]] = frozenset({429, 500, 502, 503, 504})
    """Statuses worth retrying: the provider may well answer the same request later."""
    refused_statuses: ClassVar[frozenset[int]] = frozenset({400, 413, 422})
    """Statuses that refuse the request itself (malformed, too large, a value the server
    does not take): the same request fails anywhere it is refused, and says nothing of the
    provider's health. Not 401/403 (the operator's credential), 404 (the operator's url),
    408 or 429 (the provider's load)."""

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        status_code: int,
        retry_after: float | None = None,
        url: str | None = None,
        hint: str = "",
        body: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.retry_after = retry_after
        self.transient = status_code in self.transient_statuses
        self.request_refused = status_code in self.refused_statuses
        super().__init__(provider, message, url=url, hint=hint, body=body)


class AuthenticationError(ProviderHTTPError):
    """The provider refused the credential (401/403), or needs one that was not given."""

    refused_statuses: ClassVar[frozenset[int]] = frozenset()  # the credential, whatever status


class RateLimitError(ProviderHTTPError):
    """The provider is rate limiting (429). ``retry_after`` is in seconds, or None."""

    refused_statuses: ClassVar[frozenset[int]] = frozenset()  # its load, whatever status

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        status_code: int = 429,
        retry_after: float | None = None,
        url: str | None = None,
        hint: str = "",
        body: str | None = None,
    ) -> None:
        super().__init__(
            provider,
            message,
            status_code=status_code,
            retry_after=retry_after,
            url=url,
            hint=hint,
            body=body,
        )


class ProviderResponseError(ProviderError):
    """The provider's answer could not be understood: not JSON, an HTML page, no
    ``choices``, or an error event in the stream."""


class StreamInterruptedError(ProviderError):
    """The stream ended before its end marker: the answer is incomplete."""

    transient = True


class AllProvidersFailedError(ProviderHubError):
    """Every candidate provider failed. ``errors`` maps provider name to its error, in the
    order they were tried."""

    def __init__(self, model: str, errors: Mapping[str, ProviderError]) -> None:
        self.model = model
        self.errors = dict(errors)
        count = len(self.errors)
        noun = "provider" if count == 1 else "providers"
        lines = [f"all {count} {noun} failed for model {model!r}:"]
        lines += [f"  {name}: {_without_prefix(err, name)}" for name, err in self.errors.items()]
        super().__init__("\n".join(lines))


class StructuredAnswerError(ProviderHubError):
    """The answer holds tool calls, which the text that ``create()`` returns cannot carry.

    ``completion`` is the whole answer, a :class:`providerhub.types.ChatCompletion`: its
    tool calls, its text, its usage. Nothing is lost; for such requests, use
    ``providerhub.Client().chat.completions.create(...)``, which returns them.
    """

    def __init__(self, completion: ChatCompletion) -> None:
        self.completion = completion
        calls = completion.choices[0].message.tool_calls or []
        names = ", ".join(sorted({call.function.name for call in calls}))
        super().__init__(
            f"{completion.provider or 'the provider'} answered with tool calls ({names}), "
            "which text cannot carry: use providerhub.Client().chat.completions.create(...) "
            "to get them (this error's .completion holds the whole answer)"
        )


def _without_prefix(err: ProviderError, name: str) -> str:
    text = str(err).replace("\n", " ")
    prefix = f"{name}: "
    return text[len(prefix) :] if text.startswith(prefix) else text
