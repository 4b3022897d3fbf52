"""The OpenAI chat completions dialect (``POST /v1/chat/completions``) as a codec: no I/O.

:data:`CODEC` encodes a :class:`~providerhub._codecs.base.Call` into the request (every
check made before anything is sent: stray parameters, the credential, what JSON cannot
carry), and decodes the answer: a whole document, an event stream fed its bytes as they
arrive (:class:`ChatStreamDecoder`), or an error status. Pieces are those of
:mod:`providerhub.types`: text, tool-call fragments (normalized by
:class:`~providerhub._codecs.toolcalls.ToolCallStream`), usage, the finish reason, and
the ``reasoning_content`` vLLM and DeepSeek send as :class:`~providerhub.types.Reasoning`.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from .._redaction import excerpt, safe_url
from ..errors import (
    InvalidRequestError,
    ProviderError,
    ProviderResponseError,
    StreamInterruptedError,
)
from ..types import Finish, FunctionDelta, Piece, Reasoning, ToolCallDelta, Usage
from .base import Call, Request, body_too_large, media_type, status_error

# The steps every dialect shares, under the names this module's code (and the tests, and
# code written against it) has always used.
from .base import request_headers as _request_headers
from .base import request_secrets as _secrets
from .jsonbody import REFUSED as _REFUSED
from .jsonbody import document_loads as _document_loads
from .jsonbody import dumps
from .jsonbody import encode as _encode
from .jsonbody import json_loads as _json_loads
from .jsonbody import json_or_refused as _json_or_refused
from .jsonbody import standard_json as _standard_json
from .sse import EventTooLargeError, SSEParser
from .template import TextTemplate, learn
from .toolcalls import ToolCallStream, tool_calls_of

__all__ = [
    "CHAT_PARAMETERS",
    "CODEC",
    "ChatStreamDecoder",
    "OpenAIChat",
    "dumps",
    "error_message",
]

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


class OpenAIChat:
    """The OpenAI chat completions codec (:class:`~providerhub._codecs.base.Codec`)."""

    __slots__ = ()

    def encode(self, call: Call) -> Request:
        """The request for ``call``, or :class:`InvalidRequestError` for what cannot be
        sent: a parameter that is neither OpenAI's (:data:`CHAT_PARAMETERS`) nor among
        ``extra_parameters``, an empty credential, or a value JSON cannot carry."""
        provider = call.provider
        params = call.params
        _check_parameters(provider, params, call.extra_parameters)
        auth = call.auth
        if auth is not None and (not isinstance(auth, str) or not auth):
            raise InvalidRequestError(f"the credential for {provider} must be a non-empty string")
        body: dict[str, Any] = {
            "model": call.model,
            **(call.defaults or {}),
            "messages": call.messages,
            **params,
        }
        if call.stream:
            body["stream"] = True
        return Request(
            "POST",
            call.endpoint,
            _request_headers(call.stream, call.headers, auth),
            _encode(provider, body),
            _secrets(auth, call.headers, call.endpoint),
            call,
        )

    def streams(self, request: Request, content_type: str | None) -> bool:
        """An event stream when one was asked for and the server sends one; a server
        that answers a stream with a JSON document has it read whole."""
        return request.call.stream and media_type(content_type) == "text/event-stream"

    def decode(
        self, request: Request, url: str, status: int, content_type: str | None, body: bytes
    ) -> list[Piece]:
        """The pieces of a whole answer: its text, its tool calls (each whole, as one
        fragment), its usage and its finish reason (without ``structured``, text only);
        the error an HTML page, text that is not JSON, an error document or a body past
        ``max_body_bytes`` is."""
        call = request.call
        if len(body) > call.max_body_bytes:
            raise body_too_large(call.provider, url, call.max_body_bytes)
        pieces = _document_pieces(
            call.provider, body, status, media_type(content_type), url, request.secrets
        )
        if call.structured:
            return pieces
        return [piece for piece in pieces if type(piece) is str]

    def decoder(self, request: Request, url: str) -> ChatStreamDecoder:
        call = request.call
        return ChatStreamDecoder(
            call.provider, safe_url(url), request.secrets, call.max_event_bytes, call.structured
        )

    def error(
        self,
        request: Request,
        url: str,
        status: int,
        reason: str | None,
        headers: Mapping[str, str],
        body: bytes,
    ) -> ProviderError:
        """The typed error for an error status (:func:`~providerhub._codecs.base.status_error`),
        showing the body's ``error.message`` (or ``detail``) when it has one."""
        found = error_message(body)
        return status_error(
            request.call.provider,
            status,
            reason,
            url,
            headers.get("Retry-After"),
            found if found is not None else body,
            request.secrets,
            credential_variable=request.call.credential_variable,
        )


CODEC = OpenAIChat()
"""The codec: it holds no state, one serves every call."""


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
    url = safe_url(response_url)
    stripped = raw.lstrip()
    if content_type == "text/html" or stripped[:1] == b"<":
        raise ProviderResponseError(
            provider,
            f"answered with an HTML page instead of JSON (HTTP {status})",
            url=url,
            body=excerpt(raw, secrets),
            hint="likely a bot-protection challenge or a login page; check the url, or use "
            "another provider",
        )
    try:
        doc = _document_loads()(raw)
    except ValueError:
        doc = _json_or_refused(raw)
    if doc is _REFUSED:
        raise ProviderResponseError(
            provider,
            "answered with something that is not JSON",
            url=url,
            body=excerpt(raw, secrets) or "(empty body)",
            hint="the url may not be an OpenAI-compatible endpoint",
        ) from None
    return _answer_pieces(provider, doc, url, secrets)


def _answer_pieces(provider: str, doc: Any, url: str, secrets: list[str | None]) -> list[Piece]:
    """The pieces of a whole answer: its reasoning (``reasoning_content``), its text, its
    tool calls (each whole, as one fragment), its usage and its finish reason."""
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
        thought = _reasoning(message)
    except (KeyError, IndexError, TypeError, AttributeError, ValueError):
        raise ProviderResponseError(
            provider,
            "answered with JSON that has no choices[0].message.content",
            url=url,
            body=excerpt(json.dumps(doc), secrets),
            hint="the url may not be an OpenAI-compatible endpoint",
        ) from None
    if content is not None and not isinstance(content, str):
        raise ProviderResponseError(
            provider, f"answered with content of type {type(content).__name__}", url=url
        )
    pieces: list[Piece] = [] if thought is None else [thought]
    if content:
        pieces.append(content)
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


def _reasoning(found: dict[str, Any]) -> Reasoning | None:
    """The ``reasoning_content`` of a message or a delta (vLLM's and DeepSeek's field for
    a model's reasoning) as a piece, None when there is none; ``TypeError`` when it is not
    text."""
    thought = found.get("reasoning_content")
    if thought is None or thought == "":
        return None
    if type(thought) is not str:
        raise TypeError("reasoning_content is not text")
    return Reasoning(thought)


def _usage(found: Any) -> Usage | None:
    """The token counts of a ``usage`` object, None when there are none."""
    if not isinstance(found, dict):
        return None
    counts = [found.get(key) for key in ("prompt_tokens", "completion_tokens", "total_tokens")]
    if not any(type(count) is int for count in counts):
        return None
    prompt, completion, total = (count if type(count) is int else None for count in counts)
    # The details a cost needs: cached prompt tokens, reasoning tokens (each counted in
    # prompt_tokens and completion_tokens already).
    cached = _detail(found.get("prompt_tokens_details"), "cached_tokens")
    reasoning = _detail(found.get("completion_tokens_details"), "reasoning_tokens")
    return Usage(prompt, completion, total, cached, reasoning)


def _detail(details: Any, key: str) -> int | None:
    value = details.get(key) if isinstance(details, dict) else None
    return value if type(value) is int else None


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
    message = error_message(answer)
    if message is None:
        shown = answer.get("error", answer) if isinstance(answer, dict) else answer
        message = shown if isinstance(shown, str) else json.dumps(shown)
    return ProviderResponseError(
        provider,
        "answered with an error",
        url=url,
        body=excerpt(message, secrets),
        hint="the service could not complete the request",
    )


LEARNING = 3
"""Text events a stream's decoder tries to take a template from before it stops trying
(a server whose events differ by more than their text, a counter or a random field)."""


class ChatStreamDecoder:
    """The pieces of an OpenAI event stream, fed its body's bytes as they arrive
    (:class:`~providerhub._codecs.base.StreamDecoder`): until ``[DONE]``, each non-empty
    content delta of the first choice (index 0), its tool-call fragments (normalized by
    :class:`~providerhub._codecs.toolcalls.ToolCallStream`), its ``reasoning_content``
    (vLLM's and DeepSeek's), its finish reason, and the usage when the server sends it;
    without ``structured``, text only.

    :meth:`feed` runs once per chunk, and its loop once per event, hundreds of thousands
    of times a second on a fast server: the rare cases are in functions of their own, the
    common one makes no call. Once one text event was parsed, a chunk that is the same
    bytes around another string is read by that template (:mod:`~providerhub._codecs.template`,
    off with ``templates=False``), without a JSON parse."""

    __slots__ = (
        "_calls",
        "_error",
        "_finished",
        "_learning",
        "_loads",
        "_max_event",
        "_parser",
        "_provider",
        "_secrets",
        "_structured",
        "_template",
        "_url",
        "done",
        "started",
    )

    def __init__(
        self,
        provider: str,
        url: str,
        secrets: list[str | None],
        max_event_bytes: int,
        structured: bool = True,
        templates: bool = True,
    ) -> None:
        self._provider = provider
        self._url = url  # safe to show
        self._secrets = secrets
        self._structured = structured
        self._parser = SSEParser(max_event_bytes)
        self._loads = _json_loads()
        self._finished = False  # a finish_reason came
        self._calls: ToolCallStream | None = None
        self._error: BaseException | None = None  # met after pieces; end() raises it
        self._max_event = max_event_bytes
        self._template: TextTemplate | None = None
        self._learning = LEARNING if templates else 0  # text events left to learn from
        self.done = False
        self.started = False

    def feed(self, data: bytes) -> list[Piece]:
        if self.done:
            return []
        pieces: list[Piece] = []
        try:
            parser = self._parser
            while parser.at_rest():
                template = self._template
                if template is not None:
                    # Nearly every chunk once the template is known: its events, or
                    # those it starts with, need no parse; the rest is parsed.
                    before = len(pieces)
                    taken = template.take(data, pieces, self._max_event)
                    if len(pieces) > before:
                        self.started = True
                    if taken < len(data):
                        self._events(data[taken:], pieces)
                    return pieces
                if not self._learning:
                    break
                # Learning: one event at a time, so that the template learned from one
                # reads the events after it in the same chunk.
                end = data.find(b"\n\n") + 2
                if not 2 <= end < len(data):
                    break
                if self._events(data[:end], pieces):
                    return pieces  # the end marker: what follows is not read
                data = data[end:]
            self._events(data, pieces)
        except ProviderError as error:
            if not pieces:
                raise
            self._error = error  # after the pieces before it: end() raises it
            self.done = True
        return pieces

    def _events(self, data: bytes, pieces: list[Piece]) -> bool:
        """Parse the events ``data`` completes, adding their pieces to ``pieces``; whether
        the end marker came."""
        append = pieces.append
        structured = self._structured
        loads = self._loads
        parser = self._parser
        too_large = None
        lone = parser.lone_data(data)  # nearly every chunk: one event, no Event built
        if lone is not None:
            events: Iterable[tuple[str, str, str | None]] = ((lone, "message", None),)
        else:
            try:
                events = parser.feed(data)
            except EventTooLargeError as exc:
                events = exc.events  # those before it first
                too_large = self._too_large(exc.limit)
        for event, kind, _ in events:
            if event == "[DONE]":
                self.done = True
                return True
            if kind == "error":
                raise self._error_event(event)
            try:
                doc = loads(event)
            except ValueError:
                doc = _standard_json(self._provider, event, self._url, self._secrets)
            try:
                choice = doc["choices"][0]
            except (KeyError, IndexError, TypeError):
                _check_choiceless(self._provider, doc, event, self._url, self._secrets)
                usage = _usage(doc.get("usage"))
                if usage is not None and structured:
                    append(usage)
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
                    if self._calls is None:
                        self._calls = ToolCallStream()
                    fragments = self._calls.feed(delta)
                else:
                    fragments = None
                thinking = bool(delta) and "reasoning_content" in delta
                if thinking and structured:
                    # vLLM's and DeepSeek's reasoning: kept out of the text
                    thought = _reasoning(delta)
                    if thought is not None:
                        self.started = True
                        append(thought)
            except (AttributeError, TypeError, IndexError, KeyError, ValueError):
                raise _malformed(self._provider, event, self._url, self._secrets) from None
            if text:
                if type(text) is not str:
                    raise ProviderResponseError(
                        self._provider,
                        f"sent content of type {type(text).__name__}",
                        url=self._url,
                    )
                self.started = True
                append(text)
                # An event that carries reasoning too is no template: its reading skips it.
                if self._learning and kind == "message" and not thinking:
                    self._learn(event, text, doc)
            if fragments and structured:
                self.started = True
                pieces += fragments
            if reason:
                self._finished = True
                if structured:
                    append(Finish(str(reason)))
            if structured and doc.get("usage"):
                usage = _usage(doc["usage"])
                if usage is not None:
                    append(usage)
        if too_large is not None:
            raise too_large
        return False

    def _learn(self, event: str, text: str, doc: Any) -> None:
        """Take the bytes of ``event``, whose data gave ``text``, as the stream's template
        (:mod:`~providerhub._codecs.template`) if they can be one: written as one
        ``data:`` line, as servers send them."""
        self._learning -= 1
        raw = b"data: " + event.encode("utf-8", "surrogatepass") + b"\n\n"
        self._template = learn(raw, text, doc, self._loads)
        if self._template is not None:
            self._learning = 0

    def end(self) -> list[Piece]:
        error = self._error
        if error is not None:
            self._error = None
            raise error
        if not self._finished and not self.done:
            raise StreamInterruptedError(
                self._provider,
                f"the stream from {self._url} ended before [DONE] or a finish_reason",
                url=self._url,
                hint="the answer is incomplete: try again",
            )
        return []

    def _too_large(self, limit: int) -> ProviderResponseError:
        return ProviderResponseError(
            self._provider,
            f"sent an event larger than {limit} bytes",
            url=self._url,
            hint="raise max_event_bytes if such events are expected",
        )

    def _error_event(self, data: str) -> Exception:
        return _error_answer(self._provider, _json_or_text(data), self._url, self._secrets)


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
        body=excerpt(data, secrets),
    )


def _json_or_text(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data
