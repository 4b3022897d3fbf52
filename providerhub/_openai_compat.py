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
import functools
import json
import json.scanner
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from . import _transport as transport
from ._sse import DEFAULT_MAX_EVENT_BYTES, EventTooLargeError, SSEParser
from ._timeout import Timeout, TimeoutLike, to_timeout
from .errors import (
    InvalidRequestError,
    ProviderError,
    ProviderResponseError,
    ProviderTimeoutError,
    StreamInterruptedError,
)

if TYPE_CHECKING:
    import requests

__all__ = ["CHAT_PARAMETERS", "chat_completion"]

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
    **params: Any,
) -> Iterator[str]:
    """POST a chat completion to ``endpoint`` and yield the answer's text.

    With ``stream`` true the request asks for Server-Sent Events and yields each non-empty
    content delta as it arrives; a server that answers with one JSON document instead gets
    that document's content yielded once. With ``stream`` false it yields
    ``choices[0].message.content`` once.

    ``defaults`` are body fields the caller's ``params`` override; ``params`` must be
    standard OpenAI chat parameters (:data:`CHAT_PARAMETERS`), or
    :class:`InvalidRequestError` names the stray one before anything is sent. ``auth`` is
    sent as ``Authorization: Bearer``; ``credential_variable`` is the environment variable
    an authentication error tells the user to set (``PROVIDERHUB_<NAME>_API_KEY`` by
    default). Failures raise the typed errors of :mod:`providerhub.errors`, naming
    ``provider``.
    """
    unknown = [key for key in params if key not in CHAT_PARAMETERS]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, sorted(CHAT_PARAMETERS), n=1)
        tip = f"; did you mean {close[0]!r}?" if close else ""
        raise InvalidRequestError(
            f"{provider} does not take the parameter {key!r}{tip} "
            f"(it takes the OpenAI chat parameters: {', '.join(sorted(CHAT_PARAMETERS))})"
        )
    if auth is not None and (not isinstance(auth, str) or not auth):
        raise InvalidRequestError(f"the credential for {provider} must be a non-empty string")
    limits = to_timeout(timeout)
    body: dict[str, Any] = {"model": model}
    if defaults:
        body.update(defaults)
    body["messages"] = messages
    body.update(params)
    if stream:
        body["stream"] = True
    request_headers = {
        "Content-Type": "application/json",
        "Accept": "text/event-stream" if stream else "application/json",
    }
    if headers:
        request_headers.update(headers)
    if auth:
        request_headers["Authorization"] = f"Bearer {auth}"
    payload = transport.dumps(body)
    return _exchange(
        provider,
        endpoint,
        payload,
        request_headers,
        stream,
        auth=auth,
        limits=limits,
        session=session,
        max_body_bytes=max_body_bytes,
        max_event_bytes=max_event_bytes,
        credential_variable=credential_variable,
    )


def _exchange(
    provider: str,
    endpoint: str,
    payload: bytes,
    headers: dict[str, str],
    stream: bool,
    *,
    auth: str | None,
    limits: Timeout,
    session: requests.Session | None,
    max_body_bytes: int,
    max_event_bytes: int,
    credential_variable: str | None,
) -> Iterator[str]:
    # A generator of its own, so that chat_completion() checks its arguments eagerly and
    # nothing touches the network until the first piece is asked for.
    deadline = None if limits.total is None else time.monotonic() + limits.total
    http = session if session is not None else transport.default_session()
    try:
        response = http.post(endpoint, data=payload, headers=headers, timeout=limits, stream=True)
    except Exception as exc:
        raise transport.error_for_exception(provider, exc, endpoint) from None
    abort = transport.current_abort()
    if abort is not None:
        abort.register(response)
    try:
        if response.status_code >= 400:
            raise transport.error_for_status(
                provider, response, [auth], credential_variable=credential_variable
            )
        content_type = response.headers.get("Content-Type", "")
        if stream and content_type.startswith("text/event-stream"):
            yield from _events(provider, response, auth, deadline, max_event_bytes)
        else:
            yield from _document(provider, response, auth, content_type, max_body_bytes)
    finally:
        response.close()


def _document(
    provider: str,
    response: requests.Response,
    auth: str | None,
    content_type: str,
    limit: int,
) -> Iterator[str]:
    url = transport.safe_url(response.url)
    try:
        raw = transport.read_body(response, limit, provider)
    except ProviderError:
        raise
    except Exception as exc:
        raise transport.error_for_exception(provider, exc, url, started=True) from None
    stripped = raw.lstrip()
    if content_type.startswith("text/html") or stripped[:1] == b"<":
        raise ProviderResponseError(
            provider,
            f"answered with an HTML page instead of JSON (HTTP {response.status_code})",
            url=url,
            body=transport.excerpt(raw, [auth]),
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
            body=transport.excerpt(raw, [auth]) or "(empty body)",
            hint="the url may not be an OpenAI-compatible endpoint",
        ) from None
    text = _message_content(provider, doc, url, auth)
    if text:
        yield text


def _message_content(provider: str, doc: Any, url: str, auth: str | None) -> str:
    if isinstance(doc, dict) and "error" in doc:
        raise _error_document(provider, doc, url, auth)
    try:
        content = doc["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise ProviderResponseError(
            provider,
            "answered with JSON that has no choices[0].message.content",
            url=url,
            body=transport.excerpt(json.dumps(doc), [auth]),
            hint="the url may not be an OpenAI-compatible endpoint",
        ) from None
    if content is None:
        return ""
    if not isinstance(content, str):
        raise ProviderResponseError(
            provider, f"answered with content of type {type(content).__name__}", url=url
        )
    return content


def _error_document(provider: str, doc: dict[str, Any], url: str, auth: str | None) -> Exception:
    err = doc.get("error")
    message = err.get("message") if isinstance(err, dict) else err
    return ProviderResponseError(
        provider,
        "answered with an error",
        url=url,
        body=transport.excerpt(str(message), [auth]),
        hint="the service could not complete the request",
    )


def _events(
    provider: str,
    response: requests.Response,
    auth: str | None,
    deadline: float | None,
    max_event_bytes: int,
) -> Iterator[str]:
    url = transport.safe_url(response.url)
    chunks = transport.body_chunks(response)
    parser = SSEParser(max_event_bytes)
    loads = _json_loads()
    finished = False
    started = False
    try:
        for chunk in chunks:
            if deadline is not None and time.monotonic() > deadline:
                raise ProviderTimeoutError(
                    provider,
                    f"the answer from {url} took longer than the total timeout",
                    url=url,
                    hint="raise timeout= for long answers",
                )
            for data, kind, _ in parser.feed(chunk):
                if data == "[DONE]":
                    _drain(chunks)
                    return
                if kind == "error":
                    raise _error_event(provider, data, url, auth)
                try:
                    doc = loads(data)
                except ValueError:
                    raise ProviderResponseError(
                        provider,
                        "sent an event that is not JSON",
                        url=url,
                        body=transport.excerpt(data, [auth]),
                    ) from None
                if not isinstance(doc, dict):
                    raise ProviderResponseError(
                        provider, "sent an event that is not a JSON object", url=url
                    )
                choices = doc.get("choices")
                if not choices:
                    if "error" in doc:
                        raise _error_document(provider, doc, url, auth)
                    continue  # a usage-only or keep-alive chunk
                try:
                    choice = choices[0]
                    if choice.get("finish_reason"):
                        finished = True
                    delta = choice.get("delta")
                    text = delta.get("content") if delta else None
                except (AttributeError, TypeError, IndexError, KeyError):
                    raise ProviderResponseError(
                        provider,
                        "sent an event whose choices are malformed",
                        url=url,
                        body=transport.excerpt(data, [auth]),
                    ) from None
                if text:
                    if type(text) is not str:
                        raise ProviderResponseError(
                            provider, f"sent content of type {type(text).__name__}", url=url
                        )
                    started = True
                    yield text
    except EventTooLargeError as exc:
        raise ProviderResponseError(
            provider,
            f"sent an event larger than {exc.limit} bytes",
            url=url,
            hint="raise max_event_bytes if such events are expected",
        ) from None
    except ProviderError:
        raise
    except Exception as exc:
        raise transport.error_for_exception(provider, exc, url, started=started) from None
    if not finished:
        raise StreamInterruptedError(
            provider,
            f"the stream from {url} ended before [DONE] or a finish_reason",
            url=url,
            hint="the answer is incomplete: try again",
        )


def _drain(chunks: Iterator[bytes]) -> None:
    """Read what follows ``[DONE]``, normally just the end of the body, so the connection
    goes back to the pool instead of being closed; a body that goes on is left to close."""
    for _ in zip(range(4), chunks):
        pass


@functools.cache
def _json_loads() -> Callable[[str], Any]:
    """orjson's ``loads`` when it is installed (``providerhub[fast]``), else the standard
    library's scanner: stream events are parsed once each, so this is the hot path."""
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


def _error_event(provider: str, data: str, url: str, auth: str | None) -> Exception:
    try:
        doc = json.loads(data)
    except ValueError:
        doc = {"error": data}
    if not isinstance(doc, dict):
        doc = {"error": data}
    return _error_document(provider, doc, url, auth)
