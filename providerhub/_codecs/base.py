"""What a wire dialect's codec is: the values and the two interfaces every codec has, the
HTTP status policy they share, and the steps every codec takes (the credential checked,
the headers, the JSON request with its secrets, a whole answer read), for a codec to call
rather than to write again.

A codec does no I/O: no sockets, no clocks, no timeouts. It turns a :class:`Call` (the
OpenAI-shaped parameters of a chat completion) into a :class:`Request` (method, url,
headers, body bytes), and a response's bytes into pieces (:data:`providerhub.types.Piece`)
or a typed error. A driver (:mod:`providerhub._http`) moves the bytes over a transport
(:mod:`providerhub._transports`), which alone keeps deadlines. See "Codecs" in
``docs/architecture.md``.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable, Mapping
from email.utils import parsedate_to_datetime
from time import time
from typing import Any, NamedTuple, Protocol

from .. import _settings as settings
from .._redaction import excerpt, safe_url, url_secrets
from ..errors import (
    AuthenticationError,
    InvalidRequestError,
    ProviderError,
    ProviderHTTPError,
    ProviderResponseError,
    RateLimitError,
)
from ..types import Piece
from .jsonbody import REFUSED, document_loads, encode, json_or_refused
from .sse import DEFAULT_MAX_EVENT_BYTES

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "Call",
    "Codec",
    "Request",
    "StreamDecoder",
    "body_too_large",
    "call_status_error",
    "check_auth",
    "extra_parameters",
    "json_request",
    "media_type",
    "parse_retry_after",
    "read_document",
    "request_headers",
    "request_secrets",
    "status_error",
    "stray_parameter",
    "text_only",
]

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024


class Call(NamedTuple):
    """A chat completion as the caller asked for it, in OpenAI's terms, with the options
    of the provider that sends it: what :meth:`Codec.encode` encodes."""

    provider: str
    """The provider's name, which every error names."""
    endpoint: str
    """The url to send to (it may carry credentials as user info)."""
    model: str
    messages: list[Any]
    stream: bool
    params: Mapping[str, Any]
    """The caller's parameters (``temperature``, ``tools``, ...)."""
    defaults: Mapping[str, Any] | None = None
    """Body fields the caller's ``params`` override."""
    extra_parameters: Collection[str] = ()
    """Parameters beyond the dialect's own that the endpoint takes."""
    auth: str | None = None
    """The credential."""
    headers: Mapping[str, str] | None = None
    """Headers the provider adds."""
    credential_variable: str | None = None
    """The environment variable an authentication error tells the user to set."""
    structured: bool = False
    """Decode tool calls, usage and finish too, not text alone."""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES


class Request(NamedTuple):
    """A request, checked and ready to send, and what decoding its answer needs."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    secrets: list[str | None]
    """What no message about the exchange may show (credentials, header values)."""
    call: Call
    """The call it encodes, whose options the decoding follows."""


class StreamDecoder(Protocol):
    """The decoder of one streamed answer, fed its body's bytes as they arrive."""

    @property
    def done(self) -> bool:
        """No more bytes are needed: the stream's end marker came (``[DONE]``), or an
        error that :meth:`end` raises."""
        ...

    @property
    def started(self) -> bool:
        """The answer's content (text, a tool call) has begun: a connection that breaks
        now breaks mid-answer."""
        ...

    def feed(self, data: bytes) -> list[Piece]:
        """The pieces ``data`` completes, in order (possibly none). An error in ``data``
        is raised here when no piece came before it in ``data``; after pieces, they are
        returned, :attr:`done` is true, and :meth:`end` raises it."""
        ...

    def end(self) -> list[Piece]:
        """The body ended (or :attr:`done`): the last pieces, or the error met, or
        :class:`~providerhub.errors.StreamInterruptedError` for a stream that ended
        short of its end."""
        ...


class Codec(Protocol):
    """A wire dialect: a request encoded, its answer decoded, with no I/O."""

    def encode(self, call: Call) -> Request:
        """The request for ``call``, or :class:`~providerhub.errors.InvalidRequestError`
        naming what cannot be sent (checked before any network call)."""
        ...

    def streams(self, request: Request, content_type: str | None) -> bool:
        """Whether an answer with this ``Content-Type`` header is read with
        :meth:`decoder` rather than whole with :meth:`decode`."""
        ...

    def decode(
        self, request: Request, url: str, status: int, content_type: str | None, body: bytes
    ) -> list[Piece]:
        """The pieces of a whole answer ``body`` from ``url`` (read up to
        ``max_body_bytes + 1`` bytes), or the typed error it is."""
        ...

    def decoder(self, request: Request, url: str) -> StreamDecoder:
        """A decoder for the streamed answer from ``url``."""
        ...

    def error(
        self,
        request: Request,
        url: str,
        status: int,
        reason: str | None,
        headers: Mapping[str, str],
        body: bytes,
    ) -> ProviderError:
        """The typed error for an error ``status`` from ``url``, whose body starts with
        ``body``."""
        ...


# -- the steps codecs share -------------------------------------------------------------


def check_auth(call: Call) -> None:
    """:class:`InvalidRequestError` for a credential that is given but is not a non-empty
    string: the caller's mistake, found before sending."""
    auth = call.auth
    if auth is not None and (not isinstance(auth, str) or not auth):
        raise InvalidRequestError(f"the credential for {call.provider} must be a non-empty string")


def extra_parameters(call: Call) -> Collection[str]:
    """The parameters beyond the dialect's own that ``call``'s endpoint takes: one name
    given as a string is that name, not its letters."""
    extra = call.extra_parameters
    return (extra,) if isinstance(extra, str) else extra


def stray_parameter(
    params: Iterable[str], known: Collection[str], extra: Collection[str]
) -> tuple[str, str] | None:
    """The first of ``params`` that is neither ``known`` to the dialect nor among
    ``extra``, with the tip naming the closest of them (``"; did you mean 'x'?"``, as
    :func:`~providerhub._validation.did_you_mean` words it: that module is above the
    codecs), for the codec's error; None when there is none."""
    for key in params:
        if key not in known and key not in extra:
            close = difflib.get_close_matches(key, sorted({*known, *extra}), n=1)
            return key, f"; did you mean {close[0]!r}?" if close else ""
    return None


def request_headers(
    stream: bool,
    headers: Mapping[str, str] | None,
    auth: str | None,
    *,
    fixed: Mapping[str, str] | None = None,
    auth_header: str = "Authorization",
    scheme: str = "Bearer ",
) -> dict[str, str]:
    """The headers of a JSON request: its content type, what it accepts (an event stream
    for ``stream``), the dialect's ``fixed`` headers, then the provider's ``headers``
    (which override them), then the credential ``auth`` as ``auth_header``, after
    ``scheme``."""
    found = {
        "Content-Type": "application/json",
        "Accept": "text/event-stream" if stream else "application/json",
    }
    if fixed:
        found.update(fixed)
    if headers:
        found.update(headers)
    if auth:
        found[auth_header] = f"{scheme}{auth}"
    return found


# Configured header values this long may be credentials (an api-key header, say); shorter
# ones are not worth hiding, and hiding them would garble messages.
_SECRET_HEADER_CHARS = 8


def request_secrets(
    auth: str | None, headers: Mapping[str, str] | None, endpoint: str
) -> list[str | None]:
    """What no message of the call may show: the credential, the values of the headers
    the provider configured, and the credentials in the endpoint's url."""
    found: list[str | None] = [auth, *url_secrets(endpoint)]
    if headers:
        found += [v for v in headers.values() if len(v) >= _SECRET_HEADER_CHARS]
    return found


def json_request(
    call: Call, body: dict[str, Any], headers: dict[str, str], url: str | None = None
) -> Request:
    """The POST of ``body`` as JSON for ``call``, to ``url`` (by default the call's
    endpoint), or :class:`InvalidRequestError` naming what JSON cannot carry."""
    return Request(
        "POST",
        call.endpoint if url is None else url,
        headers,
        encode(call.provider, body),
        request_secrets(call.auth, call.headers, call.endpoint),
        call,
    )


def read_document(
    request: Request,
    url: str,
    status: int,
    content_type: str | None,
    body: bytes,
    *,
    html_hint: str,
    json_hint: str,
) -> Any:
    """The JSON document of a whole answer ``body`` from ``url``, or the error it is: one
    past ``max_body_bytes``, an HTML page (``html_hint`` says what it may be), text that
    is not JSON (``json_hint`` says what the url may be)."""
    call = request.call
    if len(body) > call.max_body_bytes:
        raise body_too_large(call.provider, url, call.max_body_bytes)
    shown = safe_url(url)
    if media_type(content_type) == "text/html" or body.lstrip()[:1] == b"<":
        raise ProviderResponseError(
            call.provider,
            f"answered with an HTML page instead of JSON (HTTP {status})",
            url=shown,
            body=excerpt(body, request.secrets),
            hint=html_hint,
        )
    try:
        doc = document_loads()(body)
    except ValueError:
        doc = json_or_refused(body)
    if doc is REFUSED:
        raise ProviderResponseError(
            call.provider,
            "answered with something that is not JSON",
            url=shown,
            body=excerpt(body, request.secrets) or "(empty body)",
            hint=json_hint,
        )
    return doc


def text_only(request: Request, pieces: list[Piece]) -> list[Piece]:
    """``pieces`` for the call of ``request``: all of them when it is ``structured``,
    else its text alone."""
    if request.call.structured:
        return pieces
    return [piece for piece in pieces if type(piece) is str]


def call_status_error(
    request: Request,
    url: str,
    status: int,
    reason: str | None,
    retry_after_header: str | None,
    body: bytes,
    said: str | None,
    *,
    what: str = "chat completions",
) -> ProviderError:
    """:func:`status_error` for the call of ``request`` (its provider, secrets and
    credential variable): ``said`` is the message the codec found in ``body``, None for
    none (the body itself is shown)."""
    call = request.call
    return status_error(
        call.provider,
        status,
        reason,
        url,
        retry_after_header,
        said if said is not None else body,
        request.secrets,
        credential_variable=call.credential_variable,
        what=what,
    )


def media_type(content_type: str | None) -> str:
    """The media type of a ``Content-Type`` value, lower case, without its parameters:
    ``Text/Event-Stream; charset=utf-8`` is ``text/event-stream``."""
    return (content_type or "").partition(";")[0].strip().lower()


def body_too_large(provider: str, url: str, limit: int) -> ProviderResponseError:
    """The error for a whole answer longer than ``limit`` bytes."""
    return ProviderResponseError(
        provider,
        f"the answer is larger than {limit} bytes",
        url=safe_url(url),
        hint="raise max_body_bytes if such answers are expected",
    )


def status_error(
    provider: str,
    status: int,
    reason: str | None,
    url: str,
    retry_after_header: str | None,
    said: bytes | str,
    secrets: Collection[str | None] = (),
    *,
    credential_variable: str | None = None,
    what: str = "chat completions",
) -> ProviderError:
    """The typed error for an HTTP error ``status``, whatever the dialect: ``said`` is
    what the body says (the message the codec found in it, else the body itself), shown
    as a redacted excerpt; an authentication error names ``credential_variable`` (by
    default ``PROVIDERHUB_<NAME>_API_KEY``) as the one to set, and a 404 says that no
    ``what`` endpoint is there."""
    secrets = [*secrets, *url_secrets(url)]
    shown = safe_url(url)
    detail = excerpt(said, secrets) or None
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
        hint = f"no {what} endpoint there: check {settings.url_variable(provider)}"
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
