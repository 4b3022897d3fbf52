"""Chat completions from any OpenAI-compatible endpoint: the request, real streaming, and
every failure as a typed error naming the provider.

A provider for such an endpoint is a few lines::

    url = "https://example.invalid"
    model = ["some-model"]
    supports_stream = True
    needs_auth = False

    def _create_completion(model, messages, stream, **kwargs):
        yield from chat_completion(
            "example", url + "/v1/chat/completions", model, messages, stream, **kwargs
        )
"""

from __future__ import annotations

import difflib
import enum
import functools
import json
import json.scanner
import logging
import math
import time
from collections.abc import Callable, Collection, Generator, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from .._codecs.sse import DEFAULT_MAX_EVENT_BYTES, EventTooLargeError, SSEParser
from .._codecs.toolcalls import ToolCallStream, tool_calls_of
from .._timeout import Timeout, TimeoutLike, to_timeout
from .._transports import sync as transport
from ..errors import (
    InvalidRequestError,
    ProviderResponseError,
    StreamInterruptedError,
)
from ..types import Finish, FunctionDelta, Piece, ToolCallDelta, Usage

if TYPE_CHECKING:
    import requests

__all__ = ["CHAT_PARAMETERS", "chat_completion"]

logger = logging.getLogger("providerhub.openai_compat")  # a stable name for logging config

CHAT_PARAMETERS = frozenset(
    {
        "audio",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "max_completion_tokens",
        "max_tokens",
        "metadata",
        "modalities",
        "n",
        "parallel_tool_calls",
        "prediction",
        "presence_penalty",
        "reasoning_effort",
        "response_format",
        "seed",
        "service_tier",
        "stop",
        "store",
        "stream_options",
        "temperature",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "user",
    }
)
"""The standard OpenAI chat parameters a caller may pass through ``**kwargs``."""


def chat_completion(
    provider: str,
    endpoint: str,
    model: str,
    messages: list[Any],
    stream: bool,
    *,
    defaults: Mapping[str, Any] | None = None,
    auth: str | None = None,
    timeout: TimeoutLike = None,
    session: requests.Session | None = None,
    headers: Mapping[str, str] | None = None,
    max_body_bytes: int = transport.DEFAULT_MAX_BODY_BYTES,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    credential_variable: str | None = None,
    structured: bool = False,
    extra_parameters: Collection[str] = (),
    **params: Any,
) -> Iterator[Piece]:
    """POST a chat completion to ``endpoint`` and yield the answer's text.

    With ``structured`` true it yields the answer's structured pieces too
    (:mod:`providerhub.types`): its tool calls as OpenAI streams them, whatever the server
    sent (see :mod:`providerhub._codecs.toolcalls`), its usage and its finish reason; a provider
    that yields from it, as the bundled plugins do, passes them on to the client. Without
    it, text only, as before there were pieces.

    With ``stream`` true the request asks for Server-Sent Events and yields each non-empty
    content delta as it arrives; a server that answers with one JSON document instead gets
    that document's content yielded once. With ``stream`` false it yields
    ``choices[0].message.content`` once. Asked for several choices (``n``), it follows
    the first, the choice with index 0, and leaves the others out.

    ``defaults`` are body fields the caller's ``params`` override; ``params`` must be
    standard OpenAI chat parameters (:data:`CHAT_PARAMETERS`), or named in
    ``extra_parameters`` (the fields beyond OpenAI's that the endpoint takes: vLLM's and
    llama.cpp's ``top_k``, ``min_p``, ``chat_template_kwargs``, ...), that JSON can carry,
    or :class:`InvalidRequestError` names the stray one before anything is sent. The
    keyword-only arguments are the provider's options, which its plugin sets: the hub
    refuses each of their names in a caller's parameters. ``auth`` is
    sent as ``Authorization: Bearer``; ``credential_variable`` is the environment variable
    an authentication error tells the user to set (``PROVIDERHUB_<NAME>_API_KEY`` by
    default). ``timeout`` bounds connecting, each read and, with a total, the whole call,
    however slowly the answer arrives. Redirects are followed only within the endpoint's
    origin (see :func:`providerhub._transports.sync.post`). Failures raise the typed errors of
    :mod:`providerhub.errors`, naming ``provider``, with no credential in their messages.
    """
    request = _request(
        provider,
        endpoint,
        model,
        messages,
        stream,
        defaults,
        auth,
        headers,
        params,
        extra_parameters,
    )
    limits = to_timeout(timeout)
    return _exchange(
        provider,
        endpoint,
        request.payload,
        request.headers,
        stream,
        secrets=request.secrets,
        limits=limits,
        session=session,
        max_body_bytes=max_body_bytes,
        max_event_bytes=max_event_bytes,
        credential_variable=credential_variable,
        structured=structured,
    )


class Request(NamedTuple):
    """A chat completion request, checked and ready to send: its JSON ``payload``, its
    ``headers``, and the ``secrets`` no message about it may show."""

    payload: bytes
    headers: dict[str, str]
    secrets: list[str | None]


def _request(
    provider: str,
    endpoint: str,
    model: str,
    messages: list[Any],
    stream: bool,
    defaults: Mapping[str, Any] | None,
    auth: str | None,
    headers: Mapping[str, str] | None,
    params: Mapping[str, Any],
    extra_parameters: Collection[str] = (),
) -> Request:
    """The request :func:`chat_completion` sends (and the asyncio one), or
    :class:`InvalidRequestError` for what cannot be sent: checked before any network
    call."""
    _check_parameters(provider, params, extra_parameters)
    if auth is not None and (not isinstance(auth, str) or not auth):
        raise InvalidRequestError(f"the credential for {provider} must be a non-empty string")
    body: dict[str, Any] = {"model": model, **(defaults or {}), "messages": messages, **params}
    if stream:
        body["stream"] = True
    return Request(
        _encode(provider, body),
        _request_headers(stream, headers, auth),
        _secrets(auth, headers, endpoint),
    )


def _check_parameters(
    provider: str, params: Mapping[str, Any], extra: Collection[str] = ()
) -> None:
    if isinstance(extra, str):  # one name, not its letters
        extra = (extra,)
    unknown = [key for key in params if key not in CHAT_PARAMETERS and key not in extra]
    if unknown:
        key = unknown[0]
        known = sorted(CHAT_PARAMETERS.union(extra))
        close = difflib.get_close_matches(key, known, n=1)
        tip = f"; did you mean {close[0]!r}?" if close else ""
        also = f"; and beyond them: {', '.join(sorted(extra))}" if extra else ""
        raise InvalidRequestError(
            f"{provider} does not take the parameter {key!r}{tip} "
            f"(it takes the OpenAI chat parameters: {', '.join(sorted(CHAT_PARAMETERS))}"
            f"{also})",
            param=key,
        )


def _request_headers(
    stream: bool, headers: Mapping[str, str] | None, auth: str | None
) -> dict[str, str]:
    found = {
        "Content-Type": "application/json",
        "Accept": "text/event-stream" if stream else "application/json",
    }
    if headers:
        found.update(headers)
    if auth:
        found["Authorization"] = f"Bearer {auth}"
    return found


def _encode(provider: str, body: dict[str, Any]) -> bytes:
    """``body`` as JSON, or :class:`InvalidRequestError` naming the field JSON cannot
    carry (a ``set``, an arbitrary object): the caller's mistake, found before sending."""
    try:
        return transport.dumps(body)
    except (TypeError, ValueError, RecursionError) as exc:
        # RecursionError: nested past what the encoder can follow (the hub refuses
        # anything nested past MAX_DEPTH before this; a direct call may not).
        reason = transport.one_line(exc, typed=False)
        field = next((key for key, value in body.items() if not _encodable(value)), None)
        what = "the messages" if field == "messages" else f"the parameter {field!r}"
        raise InvalidRequestError(
            f"{what if field else 'the request'} for {provider} cannot be sent as JSON: {reason}",
            param=field,
        ) from None


def _encodable(value: Any) -> bool:
    try:
        transport.dumps(value)
    except (TypeError, ValueError, RecursionError):
        return False
    return True


# Configured header values this long may be credentials (an api-key header, say); shorter
# ones are not worth hiding, and hiding them would garble messages.
_SECRET_HEADER_CHARS = 8


def _secrets(
    auth: str | None, headers: Mapping[str, str] | None, endpoint: str
) -> list[str | None]:
    """What no message of the call may show: the credential, the values of the headers
    the provider configured, and the credentials in the endpoint's url."""
    found: list[str | None] = [auth, *transport.url_secrets(endpoint)]
    if headers:
        found += [v for v in headers.values() if len(v) >= _SECRET_HEADER_CHARS]
    return found


def _exchange(
    provider: str,
    endpoint: str,
    payload: bytes,
    headers: dict[str, str],
    stream: bool,
    *,
    secrets: list[str | None],
    limits: Timeout,
    session: requests.Session | None,
    max_body_bytes: int,
    max_event_bytes: int,
    credential_variable: str | None,
    structured: bool,
) -> Iterator[Piece]:
    # A generator of its own, so that chat_completion() checks its arguments eagerly and
    # nothing touches the network until the first piece is asked for.
    deadline = None if limits.total is None else time.monotonic() + limits.total
    http = session if session is not None else transport.default_session()
    translation = transport.Translation(provider, endpoint, secrets, deadline=deadline)
    with translation:
        response = transport.post(http, provider, endpoint, payload, headers, _wait(limits))
    translation.url = response.url
    abort = transport.current_abort()
    if abort is not None:
        abort.register(response)
    try:
        with translation:
            if response.status_code >= 400:
                raise transport.error_for_status(
                    provider,
                    response,
                    secrets,
                    credential_variable=credential_variable,
                    deadline=deadline,
                )
            content_type = transport.media_type(response.headers.get("Content-Type"))
            if stream and content_type == "text/event-stream":
                yield from _events(provider, response, translation, max_event_bytes, structured)
                return
            pieces = _document(provider, response, translation, content_type, max_body_bytes)
            if structured:
                yield from pieces
            else:
                yield from (piece for piece in pieces if type(piece) is str)
    finally:
        response.close()


def _wait(limits: Timeout) -> tuple[float, float]:
    """The connect and read timeouts of the request, none longer than the total."""
    if limits.total is None:
        return limits
    return min(limits.connect, limits.total), min(limits.read, limits.total)


def _document(
    provider: str,
    response: requests.Response,
    translation: transport.Translation,
    content_type: str,
    limit: int,
) -> Iterator[Piece]:
    translation.started = True  # a connection that breaks now breaks mid-answer
    raw = transport.read_body(response, limit, provider, translation.deadline)
    yield from _document_pieces(
        provider, raw, response.status_code, content_type, response.url, translation.secrets
    )


def _document_pieces(
    provider: str,
    raw: bytes,
    status: int,
    content_type: str,
    response_url: str,
    secrets: list[str | None],
) -> list[Piece]:
    """The pieces of an answer that came as one body, ``raw``: an OpenAI chat completion
    document, or the error an HTML page, text that is not JSON or an error document is."""
    url = transport.safe_url(response_url)
    stripped = raw.lstrip()
    if content_type == "text/html" or stripped[:1] == b"<":
        raise ProviderResponseError(
            provider,
            f"answered with an HTML page instead of JSON (HTTP {status})",
            url=url,
            body=transport.excerpt(raw, secrets),
            hint="likely a bot-protection challenge or a login page; check the url, or use "
            "another provider",
        )
    try:
        doc = json.loads(raw)
    except ValueError:
        raise ProviderResponseError(
            provider,
            "answered with something that is not JSON",
            url=url,
            body=transport.excerpt(raw, secrets) or "(empty body)",
            hint="the url may not be an OpenAI-compatible endpoint",
        ) from None
    return _answer_pieces(provider, doc, url, secrets)


def _answer_pieces(provider: str, doc: Any, url: str, secrets: list[str | None]) -> list[Piece]:
    """The pieces of a whole answer: its text, its tool calls (each whole, as one
    fragment), its usage and its finish reason."""
    if isinstance(doc, dict) and "error" in doc:
        raise _error_answer(provider, doc, url, secrets)
    try:
        choices = doc["choices"]
        choice = choices[0]
        if choice.get("index", 0):
            choice = _first_choice(choices)
        message = choice["message"]
        content = message["content"] if "tool_calls" not in message else message.get("content")
        calls = tool_calls_of(message)
    except (KeyError, IndexError, TypeError, AttributeError, ValueError):
        raise ProviderResponseError(
            provider,
            "answered with JSON that has no choices[0].message.content",
            url=url,
            body=transport.excerpt(json.dumps(doc), secrets),
            hint="the url may not be an OpenAI-compatible endpoint",
        ) from None
    if content is not None and not isinstance(content, str):
        raise ProviderResponseError(
            provider, f"answered with content of type {type(content).__name__}", url=url
        )
    pieces: list[Piece] = [content] if content else []
    for index, call in enumerate(calls or ()):
        pieces.append(
            ToolCallDelta(
                index,
                call.id,
                call.type,
                FunctionDelta(call.function.name, call.function.arguments),
            )
        )
    usage = _usage(doc.get("usage"))
    if usage is not None:
        pieces.append(usage)
    reason = choice.get("finish_reason")
    if isinstance(reason, str) and reason:
        pieces.append(Finish(reason))
    return pieces


def _usage(found: Any) -> Usage | None:
    """The token counts of a ``usage`` object, None when there are none."""
    if not isinstance(found, dict):
        return None
    counts = [found.get(key) for key in ("prompt_tokens", "completion_tokens", "total_tokens")]
    if not any(type(count) is int for count in counts):
        return None
    prompt, completion, total = (count if type(count) is int else None for count in counts)
    return Usage(prompt, completion, total)


def _first_choice(choices: list[Any]) -> Any:
    """The choice with index 0 among ``choices``, None when there is none: with ``n`` > 1
    the service answers several, and the caller gets the first."""
    for choice in choices:
        if isinstance(choice, dict) and not choice.get("index", 0):
            return choice
    return None


def _error_answer(provider: str, answer: Any, url: str, secrets: list[str | None]) -> Exception:
    """The error for an answer that is an error: a JSON document with ``error``, or the
    data of an ``error`` event (JSON or not)."""
    message = transport.error_message(answer)
    if message is None:
        shown = answer.get("error", answer) if isinstance(answer, dict) else answer
        message = shown if isinstance(shown, str) else json.dumps(shown)
    return ProviderResponseError(
        provider,
        "answered with an error",
        url=url,
        body=transport.excerpt(message, secrets),
        hint="the service could not complete the request",
    )


class _More(enum.Enum):
    MORE = "more"


MORE = _More.MORE
"""A chunk that is not there yet: the asyncio reader (:mod:`providerhub._http.achat`) hands
:func:`_event_pieces` chunks as they arrive, and this when it has none; the reader yields
it back, and is resumed with the next chunk."""


def _events(
    provider: str,
    response: requests.Response,
    translation: transport.Translation,
    max_event_bytes: int,
    structured: bool = True,
) -> Iterator[Piece]:
    """The pieces of an event stream, as :func:`_event_pieces` reads them from
    ``response``, each read within the call's deadline."""
    sock, read_timeout = transport.body_socket(response)
    pieces = _event_pieces(
        provider,
        transport.body_chunks(response),
        transport.safe_url(response.url),
        translation,
        max_event_bytes,
        sock,
        read_timeout,
        structured,
    )
    return cast("Iterator[Piece]", pieces)  # MORE comes only from an inbox's chunks


def _event_pieces(
    provider: str,
    chunks: Iterator[bytes | _More],
    url: str,
    translation: transport.Translation,
    max_event_bytes: int,
    sock: Any = None,
    read_timeout: float = math.inf,
    structured: bool = True,
) -> Generator[Piece | _More, None, None]:
    """The pieces of an event stream whose body arrives as ``chunks``, as they arrive,
    until ``[DONE]``: each non-empty content delta of the first choice (index 0), its
    tool-call fragments (normalized by :class:`~providerhub._codecs.toolcalls.ToolCallStream`),
    its finish reason, and the usage when the server sends it. A chunk that is
    :data:`MORE` is yielded back as it is. Past the call's deadline, a
    :class:`ProviderTimeoutError`; with ``sock`` (the body's socket), its timeout is
    shrunk to what is left of the deadline as the stream goes on. Without ``structured``,
    text only (no wrapper filters the pieces: that would cost a resumption per event).

    This loop runs once per event, hundreds of thousands of times a second on a fast
    server: the rare cases are in functions of their own, the common one makes no call."""
    secrets = translation.secrets
    deadline = translation.deadline
    parser = SSEParser(max_event_bytes)
    loads = _json_loads()
    finished = False
    calls: ToolCallStream | None = None
    # The deadline is kept as transport.body_chunks keeps it, inline: no call per event.
    shrunk = -math.inf
    try:
        for chunk in chunks:
            if chunk is MORE:
                yield MORE
                continue
            if deadline is not None and time.monotonic() > deadline:
                raise transport.total_timeout(provider, url)
            for data, kind, _ in parser.feed(chunk):
                if data == "[DONE]":
                    _drain(chunks)
                    return
                if kind == "error":
                    raise _error_answer(provider, _json_or_text(data), url, secrets)
                try:
                    doc = loads(data)
                except ValueError:
                    doc = _standard_json(provider, data, url, secrets)
                try:
                    choice = doc["choices"][0]
                except (KeyError, IndexError, TypeError):
                    _check_choiceless(provider, doc, data, url, secrets)
                    usage = _usage(doc.get("usage"))
                    if usage is not None and structured:
                        yield usage
                    continue  # a usage-only or keep-alive chunk
                try:
                    if choice.get("index", 0):
                        choice = _first_choice(doc["choices"])
                        if choice is None:
                            continue  # a delta of another choice
                    reason = choice.get("finish_reason")
                    delta = choice.get("delta")
                    text = delta.get("content") if delta else None
                    if delta and ("tool_calls" in delta or "function_call" in delta):
                        calls = calls or ToolCallStream()
                        fragments = calls.feed(delta)
                    else:
                        fragments = None
                except (AttributeError, TypeError, IndexError, KeyError, ValueError):
                    raise _malformed(provider, data, url, secrets) from None
                if text:
                    if type(text) is not str:
                        raise ProviderResponseError(
                            provider, f"sent content of type {type(text).__name__}", url=url
                        )
                    translation.started = True
                    yield text
                if fragments and structured:
                    translation.started = True
                    yield from fragments
                if reason:
                    finished = True
                    if structured:
                        yield Finish(str(reason))
                if structured and doc.get("usage"):
                    usage = _usage(doc["usage"])
                    if usage is not None:
                        yield usage
            if deadline is not None:
                now = time.monotonic()
                if now >= deadline:
                    raise transport.total_timeout(provider, url)
                if sock is not None and now - shrunk > transport.DEADLINE_SLACK:
                    sock.settimeout(min(read_timeout, deadline - now))
                    shrunk = now
    except EventTooLargeError as exc:
        raise ProviderResponseError(
            provider,
            f"sent an event larger than {exc.limit} bytes",
            url=url,
            hint="raise max_event_bytes if such events are expected",
        ) from None
    if not finished:
        raise StreamInterruptedError(
            provider,
            f"the stream from {url} ended before [DONE] or a finish_reason",
            url=url,
            hint="the answer is incomplete: try again",
        )


def _check_choiceless(
    provider: str, doc: Any, data: str, url: str, secrets: list[str | None]
) -> None:
    """Raise for an event without a first choice unless it is a usage-only or keep-alive
    chunk: one that is not a JSON object, is an error, or has choices that are not a
    list."""
    if not isinstance(doc, dict):
        raise ProviderResponseError(provider, "sent an event that is not a JSON object", url=url)
    if "error" in doc and not doc.get("choices"):
        raise _error_answer(provider, doc, url, secrets)
    if doc.get("choices"):
        raise _malformed(provider, data, url, secrets)


def _malformed(provider: str, data: str, url: str, secrets: list[str | None]) -> Exception:
    return ProviderResponseError(
        provider,
        "sent an event whose choices are malformed",
        url=url,
        body=transport.excerpt(data, secrets),
    )


def _standard_json(provider: str, data: str, url: str, secrets: list[str | None]) -> Any:
    """An event's data that the fast parser refused, as the standard library reads it, so
    that ``providerhub[fast]`` never changes what is accepted (orjson refuses ``NaN`` and
    integers past 64 bits, which ``json`` reads); an error when neither reads it."""
    try:
        return _scan(data)
    except ValueError:
        raise ProviderResponseError(
            provider,
            "sent an event that is not JSON",
            url=url,
            body=transport.excerpt(data, secrets),
        ) from None


def _json_or_text(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data


def _drain(chunks: Iterator[bytes | _More]) -> None:
    """Read what follows ``[DONE]``, normally just the end of the body, so the connection
    goes back to the pool instead of being closed; a body that goes on, breaks or passes
    the deadline is left to close: the answer is whole already."""
    try:
        for _ in zip(range(4), chunks):
            pass
    except Exception as exc:
        logger.debug("the end of an event stream could not be read: %s", type(exc).__name__)


@functools.cache
def _json_loads() -> Callable[[str], Any]:
    """orjson's ``loads`` when it is installed (``providerhub[fast]``), else the standard
    library's scanner: stream events are parsed once each, so this is the hot path. What
    orjson refuses goes to the standard library (:func:`_standard_json`), so both read
    the same events."""
    try:
        import orjson  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return _scan
    loads: Callable[[str], Any] = orjson.loads
    return loads


# typeshed types make_scanner's argument as a scanner; it takes the decoder whose options
# it scans with.
_scan_once: Callable[[str, int], tuple[Any, int]] = json.scanner.make_scanner(
    json.JSONDecoder()  # type: ignore[arg-type]
)


def _scan(text: str) -> Any:
    """``json.loads`` for one JSON value, with less work per call.

    ``json.loads`` wraps the C scanner in two Python calls and two regular-expression
    matches for surrounding whitespace; an event's data has none, so the scanner is called
    directly, and ``json.loads`` gets the rare text the scanner does not take whole (it
    allows the whitespace, or raises its usual error)."""
    try:
        value, end = _scan_once(text, 0)
    except StopIteration:
        return json.loads(text)
    if end != len(text):
        return json.loads(text)
    return value
