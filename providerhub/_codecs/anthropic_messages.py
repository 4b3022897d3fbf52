"""Anthropic's Messages API (``POST /v1/messages``) as a codec: no I/O.

:data:`CODEC` encodes the OpenAI-shaped :class:`~providerhub._codecs.base.Call` into a
Messages request, and decodes the answers into the pieces of :mod:`providerhub.types`,
so that a caller of the OpenAI shape gets Claude as it gets any other model.

Requests, translated before anything is sent (what cannot be translated raises
:class:`~providerhub.errors.InvalidRequestError` naming it):

- ``system`` and ``developer`` messages, wherever they stand, join in order into the
  request's ``system``; the API has no system turn inside the conversation;
- content parts: ``text`` to text blocks, ``image_url`` to image blocks (a ``data:`` URI
  as a ``base64`` source, an ``http(s)`` URL as a ``url`` source);
- an assistant's ``tool_calls`` to ``tool_use`` blocks, their ``arguments`` parsed into
  ``input``; ``tool`` messages to ``tool_result`` blocks; consecutive messages of one
  role (the ``tool`` messages after a call, and a user message after them) make one turn;
- ``tools`` to ``{name, description, input_schema}``; ``tool_choice`` ``auto``,
  ``required``, ``none`` and a named function to ``auto``, ``any``, ``none`` and
  ``tool``; ``parallel_tool_calls=False`` to ``disable_parallel_tool_use``;
- ``stop`` to ``stop_sequences``; ``max_tokens`` (or ``max_completion_tokens``), which the
  API requires, :data:`DEFAULT_MAX_TOKENS` when the caller gives none; ``temperature``
  (0 to 1 here), ``top_p``; ``user`` to ``metadata.user_id``; ``n`` only as 1;
  ``stream_options`` is taken and has nothing to send (the client counts usage itself).

The other OpenAI parameters (``response_format``, ``seed``, ``logprobs``, the penalties,
...) change what an answer is, and the API has nothing to send them as: they are refused
rather than dropped. A declaration's ``extra_parameters`` (the plugin's ``top_k`` and
``thinking``) go into the body as given.

Answers: text blocks to text; ``tool_use`` blocks to tool calls with Anthropic's ids and
``input`` as JSON ``arguments``; thinking to :class:`~providerhub.types.Reasoning` (never
to the text; redacted thinking is left out); usage (``input_tokens`` with the cache's
tokens as ``prompt_tokens``, ``output_tokens`` as ``completion_tokens``); the stop reason
as OpenAI's finish reason (:data:`FINISH_REASONS`). A stream follows the event grammar
(``message_start``, ``content_block_start``/``_delta``/``_stop``, ``message_delta``,
``message_stop``, ``ping``), ends at ``message_stop`` and never short of it: an ``error``
event, or a body that ends before ``message_stop``, is
:class:`~providerhub.errors.StreamInterruptedError`. Errors: the body's
``error.type`` and ``error.message`` in the message; ``overloaded_error`` and HTTP 529 are
transient, so the router retries them.
"""

from __future__ import annotations

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
from ..types import Finish, FunctionDelta, Piece, Reasoning, ToolCallDelta, Usage, Verbatim
from .base import (
    Call,
    Request,
    StreamDecoder,
    call_status_error,
    check_auth,
    extra_parameters,
    json_request,
    media_type,
    read_document,
    request_headers,
    stray_parameter,
    text_only,
)
from .eventstream import EventStreamDecoder
from .sse import EventTooLargeError, SSEParser

__all__ = [
    "ANTHROPIC_VERSION",
    "CODEC",
    "DEFAULT_MAX_TOKENS",
    "FINISH_REASONS",
    "MESSAGES_PARAMETERS",
    "NATIVE",
    "AnthropicMessages",
    "MessagesStreamDecoder",
    "NativeMessages",
]

ANTHROPIC_VERSION = "2023-06-01"
"""The ``anthropic-version`` header every request carries (a declaration's ``headers``
may send another)."""

DEFAULT_MAX_TOKENS = 4096
"""The ``max_tokens`` sent when the caller gives none: the API requires one, and every
current Claude model can write this many."""

MESSAGES_PARAMETERS = frozenset(
    {
        "max_completion_tokens",
        "max_tokens",
        "n",
        "parallel_tool_calls",
        "stop",
        "stream_options",
        "temperature",
        "tool_choice",
        "tools",
        "top_p",
        "user",
    }
)
"""The OpenAI chat parameters this codec translates; the others are refused."""

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
"""Anthropic's ``stop_reason`` to OpenAI's ``finish_reason``; another reason passes as it
is."""

_TOOL_CHOICES = {"auto": "auto", "required": "any", "none": "none"}


class AnthropicMessages:
    """The Anthropic Messages codec (:class:`~providerhub._codecs.base.Codec`)."""

    __slots__ = ()

    def encode(self, call: Call) -> Request:
        """The Messages request for ``call``, or :class:`InvalidRequestError` naming what
        cannot be translated or sent (see the module's docstring)."""
        provider = call.provider
        params = {**(call.defaults or {}), **call.params}
        extra = extra_parameters(call)
        _check_parameters(provider, params, extra)
        check_auth(call)
        system, messages = _messages(provider, call.messages)
        body: dict[str, Any] = {
            "model": call.model,
            "max_tokens": _max_tokens(provider, params),
            "messages": messages,
        }
        if system:
            body["system"] = system if len(system) > 1 else system[0]["text"]
        _translate(provider, params, body)
        for key in extra:
            if key in params and key not in MESSAGES_PARAMETERS:
                body[key] = params[key]
        if call.stream:
            body["stream"] = True
        return json_request(call, body, _headers(call, {"anthropic-version": ANTHROPIC_VERSION}))

    def streams(self, request: Request, content_type: str | None) -> bool:
        """An event stream when one was asked for and the server sends one."""
        return request.call.stream and media_type(content_type) == "text/event-stream"

    def decode(
        self, request: Request, url: str, status: int, content_type: str | None, body: bytes
    ) -> list[Piece]:
        """The pieces of a whole Message (without ``structured``, its text only), or the
        error an HTML page, text that is not JSON, an error document or a body past
        ``max_body_bytes`` is."""
        doc = read_document(
            request,
            url,
            status,
            content_type,
            body,
            html_hint="likely a proxy's or a login page; check the url, or use another provider",
            json_hint="the url may not be an Anthropic Messages endpoint",
        )
        pieces = _message_pieces(request.call.provider, doc, safe_url(url), request.secrets)
        return text_only(request, pieces)

    def decoder(self, request: Request, url: str) -> StreamDecoder:
        return MessagesStreamDecoder(request, url)

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
        showing the body's ``error.type`` and ``error.message`` and the ``request-id``;
        HTTP 529 and an ``overloaded_error`` are transient, as 503 is."""
        kind, message = _error_of(body)
        said = message
        if message is not None:
            said = f"{kind}: {message}" if kind else message
            request_id = headers.get("request-id")
            if request_id:
                said += f" (request-id {request_id})"
        error = call_status_error(
            request, url, status, reason, headers.get("Retry-After"), body, said
        )
        if status == 529 or kind == "overloaded_error":
            error.transient = True  # Anthropic's "overloaded": a later try may well pass
        return error


CODEC = AnthropicMessages()
"""The codec: it holds no state, one serves every call."""


# -- requests --------------------------------------------------------------------------------


def _headers(call: Call, fixed: dict[str, str]) -> dict[str, str]:
    """The request's headers: the credential goes in ``x-api-key``."""
    return request_headers(
        call.stream, call.headers, call.auth, fixed=fixed, auth_header="x-api-key", scheme=""
    )


def _check_parameters(provider: str, params: Mapping[str, Any], extra: Collection[str]) -> None:
    stray = stray_parameter(params, MESSAGES_PARAMETERS, extra)
    if stray is not None:
        key, tip = stray
        known = sorted(MESSAGES_PARAMETERS.union(extra))
        raise InvalidRequestError(
            f"{provider} (Anthropic's Messages API) cannot take the parameter {key!r}{tip}: "
            f"it takes {', '.join(known)}; leave {key!r} out",
            param=key,
        )


def _max_tokens(provider: str, params: Mapping[str, Any]) -> int:
    for key in ("max_tokens", "max_completion_tokens"):
        value = params.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidRequestError(
                f"{key} for {provider} must be a whole number of at least 1, not {value!r}",
                param=key,
            )
        return value
    return DEFAULT_MAX_TOKENS


def _translate(provider: str, params: Mapping[str, Any], body: dict[str, Any]) -> None:
    """Add the request's parameters to ``body`` in the API's terms."""
    temperature = params.get("temperature")
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
            raise _bad(provider, "temperature", f"must be a number, not {temperature!r}")
        if not 0 <= temperature <= 1:
            raise _bad(
                provider,
                "temperature",
                f"must be between 0 and 1 for Anthropic's models, not {temperature!r}",
            )
        body["temperature"] = temperature
    if params.get("top_p") is not None:
        body["top_p"] = params["top_p"]
    stop = params.get("stop")
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else stop
        if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
            raise _bad(provider, "stop", f"must be a string or a list of strings, not {stop!r}")
        if stops:
            body["stop_sequences"] = stops
    n = params.get("n")
    if n is not None and n != 1:
        raise _bad(provider, "n", f"can only be 1: the API gives one answer a call, not {n!r}")
    user = params.get("user")
    if user is not None:
        if not isinstance(user, str):
            raise _bad(provider, "user", f"must be a string, not {user!r}")
        body["metadata"] = {"user_id": user}
    tools = params.get("tools")
    if tools is not None:
        body["tools"] = _tools(provider, tools)
    choice = _tool_choice(provider, params.get("tool_choice"))
    parallel = params.get("parallel_tool_calls")
    if parallel is False:
        choice = choice or {"type": "auto"}
        if choice["type"] != "none":
            choice["disable_parallel_tool_use"] = True
    if choice is not None:
        body["tool_choice"] = choice


def _tools(provider: str, tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise _bad(provider, "tools", f"must be a list of tools, not {tools!r}")
    found = []
    for number, tool in enumerate(tools, 1):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            raise _bad(
                provider,
                "tools",
                f"item {number} must be a function tool, "
                '{"type": "function", "function": {...}}: the API takes no other kind here',
            )
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise _bad(provider, "tools", f"item {number} must have a function with a name")
        entry: dict[str, Any] = {"name": fn["name"]}
        if fn.get("description"):
            entry["description"] = fn["description"]
        schema = fn.get("parameters")
        # The API requires a schema; a function without parameters takes an empty object.
        entry["input_schema"] = schema if schema else {"type": "object", "properties": {}}
        found.append(entry)
    return found


def _tool_choice(provider: str, choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, str) and choice in _TOOL_CHOICES:
        return {"type": _TOOL_CHOICES[choice]}
    if isinstance(choice, dict) and choice.get("type") == "function":
        fn = choice.get("function")
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            return {"type": "tool", "name": fn["name"]}
    raise _bad(
        provider,
        "tool_choice",
        'must be "auto", "required", "none" or {"type": "function", "function": '
        f'{{"name": ...}}}}, not {choice!r}',
    )


def _bad(provider: str, param: str, what: str) -> InvalidRequestError:
    return InvalidRequestError(f"{param} for {provider} {what}", param=param)


def _messages(
    provider: str, messages: Iterable[Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ``system`` text blocks and the conversation's turns of OpenAI ``messages``."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for number, message in enumerate(messages, 1):
        if not isinstance(message, dict):
            raise _bad_message(provider, number, "must be an object with a role")
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            system += [
                block for block in _blocks(provider, number, content, images=False) if block["text"]
            ]
            continue
        if role == "user":
            blocks = _blocks(provider, number, content, images=True)
        elif role == "assistant":
            blocks = _assistant_blocks(provider, number, message)
        elif role == "tool":
            blocks = [_tool_result(provider, number, message)]
            role = "user"
        else:
            raise _bad_message(
                provider,
                number,
                f"has the role {role!r}, which Anthropic's API cannot take (it takes system, "
                "developer, user, assistant and tool)",
            )
        if not blocks:
            continue  # an empty turn: the API refuses one, and it says nothing
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] += blocks  # one turn a role, as the API merges them
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        blocks = turn["content"]
        if len(blocks) == 1 and blocks[0]["type"] == "text":
            turn["content"] = blocks[0]["text"]
    return system, turns


def _bad_message(provider: str, number: int, what: str) -> InvalidRequestError:
    return InvalidRequestError(f"message {number} for {provider} {what}", param="messages")


def _blocks(provider: str, number: int, content: Any, *, images: bool) -> list[dict[str, Any]]:
    """Content blocks of a message's ``content``: text, and images where ``images``."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise _bad_message(provider, number, "must have text or a list of parts as content")
    blocks = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("text", "refusal"):
            text = part.get(kind)
            if not isinstance(text, str):
                raise _bad_message(provider, number, f"has a {kind} part without its text")
            if text:
                blocks.append({"type": "text", "text": text})
        elif kind == "image_url" and images:
            blocks.append(_image(provider, number, part.get("image_url")))
        else:
            where = "a user message" if images else "this message"
            raise _bad_message(
                provider,
                number,
                f"has a part of type {kind!r}, which {where} cannot carry to Anthropic's "
                "API (text" + (" and image_url" if images else "") + " parts can)",
            )
    return blocks


def _image(provider: str, number: int, image: Any) -> dict[str, Any]:
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise _bad_message(provider, number, 'has an image_url part without {"url": ...}')
    if url.startswith("data:"):
        head, comma, data = url[5:].partition(",")
        media, *options = head.split(";")
        media = media.strip().lower()
        base64 = any(option.strip().lower() == "base64" for option in options)
        if not comma or not base64 or not media.startswith("image/"):
            raise _bad_message(
                provider,
                number,
                "has an image data URI that is not data:image/<type>;base64,<data>",
            )
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media, "data": data},
        }
    if url.lower().startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise _bad_message(
        provider, number, "has an image_url that is neither an http(s) URL nor a data: URI"
    )


def _assistant_blocks(provider: str, number: int, message: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = _blocks(provider, number, message.get("content"), images=False)
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise _bad_message(provider, number, "must have a list as tool_calls")
    for call in calls:
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(call.get("id"), str):
            raise _bad_message(provider, number, "has a tool call without an id and a function")
        arguments = fn.get("arguments") or "{}"
        try:
            parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise _bad_message(
                provider,
                number,
                f"has a tool call ({call['id']!r}) whose arguments are not a JSON object, "
                "which Anthropic's tool_use input must be",
            )
        blocks.append(
            {"type": "tool_use", "id": call["id"], "name": fn.get("name"), "input": parsed}
        )
    return blocks


def _tool_result(provider: str, number: int, message: dict[str, Any]) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise _bad_message(provider, number, "is a tool result without its tool_call_id")
    content = message.get("content")
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": call_id}
    if isinstance(content, str):
        result["content"] = content
    elif content is not None:
        result["content"] = _blocks(provider, number, content, images=True)
    return result


# -- answers ---------------------------------------------------------------------------------


def _message_pieces(provider: str, doc: Any, url: str, secrets: list[str | None]) -> list[Piece]:
    """The pieces of a whole Message: thinking, text and tool calls in the order of its
    content blocks, then its usage and its finish reason."""
    if isinstance(doc, dict) and doc.get("type") == "error":
        raise _error_answer(provider, doc, url, secrets, interrupted=False)
    content = doc.get("content") if isinstance(doc, dict) else None
    if not isinstance(content, list):
        raise ProviderResponseError(
            provider,
            "answered with JSON that has no content list",
            url=url,
            body=excerpt(json.dumps(doc), secrets),
            hint="the url may not be an Anthropic Messages endpoint",
        )
    pieces: list[Piece] = []
    tools = 0
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block.get("text"), str):
            if block["text"]:
                pieces.append(block["text"])
        elif kind == "thinking" and isinstance(block.get("thinking"), str):
            if block["thinking"]:
                pieces.append(Reasoning(block["thinking"]))
        elif kind == "tool_use":
            try:
                arguments = json.dumps(block["input"], ensure_ascii=False)
                pieces.append(
                    ToolCallDelta(
                        tools, block["id"], "function", FunctionDelta(block["name"], arguments)
                    )
                )
            except (KeyError, TypeError, ValueError):
                raise _malformed(provider, "a tool_use block", block, url, secrets) from None
            tools += 1
        # redacted thinking and server tools' blocks carry nothing an OpenAI answer has
    usage = _usage(doc.get("usage"))
    if usage is not None:
        pieces.append(usage)
    reason = doc.get("stop_reason")
    if isinstance(reason, str) and reason:
        pieces.append(Finish(FINISH_REASONS.get(reason, reason)))
    return pieces


def _usage(found: Any, into: dict[str, int] | None = None) -> Usage | None:
    """The :class:`Usage` of an Anthropic ``usage`` object (merged into ``into``, the
    counts so far of a stream, whose later events repeat or update them): the input's
    tokens, the cache's included, as ``prompt_tokens``."""
    counts = {} if into is None else into
    if isinstance(found, dict):
        for key, value in found.items():
            if type(value) is int:
                counts[key] = value
    if not counts:
        return None
    prompt_keys = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    prompt = sum(counts.get(key, 0) for key in prompt_keys) if "input_tokens" in counts else None
    completion = counts.get("output_tokens")
    total = None if prompt is None or completion is None else prompt + completion
    cached, created = (
        counts.get("cache_read_input_tokens"),
        counts.get("cache_creation_input_tokens"),
    )
    return Usage(prompt, completion, total, cached, cache_creation_tokens=created)


def _error_of(body: bytes | str | Any) -> tuple[str | None, str | None]:
    """The ``error.type`` and ``error.message`` of an Anthropic error document (its JSON
    text or parsed), Nones when it is not one."""
    doc = body
    if isinstance(body, (bytes, str)):
        try:
            doc = json.loads(body)
        except ValueError:
            return None, None
    error = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(error, dict):
        kind, message = error.get("type"), error.get("message")
        return (
            kind if isinstance(kind, str) else None,
            message if isinstance(message, str) else json.dumps(error),
        )
    if isinstance(error, str):
        return None, error
    return None, None


def _error_answer(
    provider: str, doc: Any, url: str, secrets: list[str | None], *, interrupted: bool
) -> ProviderError:
    """The error for an error document, or for an ``error`` event (``interrupted``): a
    stream that an error broke off is incomplete, and may pass if asked again."""
    kind, message = _error_of(doc)
    said = f"{kind}: {message}" if kind and message else message or str(doc)
    if interrupted:
        return StreamInterruptedError(
            provider,
            f"the stream from {url} broke off with an error",
            url=url,
            body=excerpt(said, secrets),
            hint="the answer is incomplete: try again",
        )
    return ProviderResponseError(
        provider,
        "answered with an error",
        url=url,
        body=excerpt(said, secrets),
        hint="the service could not complete the request",
    )


def _malformed(
    provider: str, what: str, found: Any, url: str, secrets: list[str | None]
) -> ProviderResponseError:
    shown = found if isinstance(found, str) else json.dumps(found, default=repr)
    return ProviderResponseError(
        provider, f"sent {what} that is malformed", url=url, body=excerpt(shown, secrets)
    )


def _text(value: Any) -> str:
    """``value``, which an event says is text; ``TypeError`` (a malformed event) if not."""
    if type(value) is not str:
        raise TypeError(f"text of type {type(value).__name__}")
    return value


class MessagesStreamDecoder(EventStreamDecoder):
    """The pieces of a Messages event stream, fed its body's bytes as they arrive
    (:class:`~providerhub._codecs.base.StreamDecoder`): text deltas, tool calls as OpenAI
    streams them (id and name in a call's first fragment, then pieces of its arguments),
    thinking as :class:`~providerhub.types.Reasoning`, the finish reason and the usage
    from ``message_delta``; done at ``message_stop``. Without ``structured``, text only.
    Events of kinds it does not know are passed over, as the API's versioning policy
    asks of clients."""

    __slots__ = ("_blocks", "_tools", "_usage", "started")

    def __init__(self, request: Request, url: str, *, structured: bool | None = None) -> None:
        super().__init__(request, url, structured=structured)
        self._blocks: dict[int, list[Any]] = {}
        """Open content blocks by index: [type, tool index, arguments sent]."""
        self._tools = 0
        self._usage: dict[str, int] = {}
        self.started = False

    def feed(self, data: bytes) -> list[Piece]:
        pieces = super().feed(data)
        if pieces:
            self.started = True
            if not self._structured:
                pieces = [piece for piece in pieces if type(piece) is str]
        return pieces

    def _event(self, data: str, name: str, pieces: list[Piece]) -> bool:
        if name == "ping":
            return False
        doc = self._json(data)
        if name == "error" or (isinstance(doc, dict) and doc.get("type") == "error"):
            raise _error_answer(self._provider, doc, self._url, self._secrets, interrupted=True)
        if not isinstance(doc, dict):
            raise ProviderResponseError(
                self._provider, "sent an event that is not a JSON object", url=self._url
            )
        if doc.get("type") == "message_stop":
            return True
        try:
            self._read(doc, pieces)
        except (KeyError, TypeError, AttributeError, ValueError):
            raise _malformed(
                self._provider, f"a {name} event", data, self._url, self._secrets
            ) from None
        return False

    def _read(self, doc: dict[str, Any], pieces: list[Piece]) -> None:
        """Add the pieces of one event, ``doc``, to ``pieces``."""
        kind = doc["type"]
        if kind == "content_block_delta":
            delta = doc["delta"]
            block = self._blocks[doc["index"]]
            step = delta["type"]
            if step == "text_delta":
                if delta["text"]:
                    pieces.append(_text(delta["text"]))
            elif step == "input_json_delta":
                if delta["partial_json"] and block[0] == "tool_use":
                    block[2] = True
                    pieces.append(
                        ToolCallDelta(block[1], function=FunctionDelta(None, delta["partial_json"]))
                    )
            elif step == "thinking_delta" and delta["thinking"]:
                pieces.append(Reasoning(_text(delta["thinking"])))
            # signature and citation deltas carry nothing an OpenAI answer has
        elif kind == "content_block_start":
            block = doc["content_block"]
            index = doc["index"]
            if block["type"] == "tool_use":
                tool = self._tools
                self._tools += 1
                self._blocks[index] = ["tool_use", tool, False]
                pieces.append(
                    ToolCallDelta(
                        tool,
                        _text(block["id"]),
                        "function",
                        FunctionDelta(_text(block["name"]), ""),
                    )
                )
                if block.get("input"):  # the API starts with {} and streams the input
                    self._blocks[index][2] = True
                    pieces.append(
                        ToolCallDelta(
                            tool, function=FunctionDelta(None, json.dumps(block["input"]))
                        )
                    )
            else:
                self._blocks[index] = [block["type"], None, False]
                if block["type"] == "text" and block.get("text"):
                    pieces.append(_text(block["text"]))
                elif block["type"] == "thinking" and block.get("thinking"):
                    pieces.append(Reasoning(_text(block["thinking"])))
        elif kind == "content_block_stop":
            block = self._blocks.pop(doc["index"])
            if block[0] == "tool_use" and not block[2]:
                # A call with no input streams none: its arguments are the empty object.
                pieces.append(ToolCallDelta(block[1], function=FunctionDelta(None, "{}")))
        elif kind == "message_start":
            _usage(doc["message"].get("usage"), self._usage)
        elif kind == "message_delta":
            usage = _usage(doc.get("usage"), self._usage)
            reason = doc["delta"].get("stop_reason")
            if usage is not None:
                pieces.append(usage)
            if isinstance(reason, str) and reason:
                pieces.append(Finish(FINISH_REASONS.get(reason, reason)))

    def _ended(self) -> list[Piece]:
        if not self.done:
            raise self._interrupted("ended before message_stop")
        return []


# -- passing Messages through ----------------------------------------------------------------


class NativeMessages(AnthropicMessages):
    """Anthropic's Messages API spoken natively, for a client that speaks it too (the
    gateway's ``/v1/messages``): the request the client sent goes out as it is (its
    ``cache_control``, ``thinking``, ``top_k`` and blocks untouched), with the provider's
    model, credential and headers, and the answer comes back verbatim
    (:class:`~providerhub._codecs.base.Verbatim`: each event of a stream whole, or the
    whole document), so that thinking blocks keep their signatures.

    The call's ``params`` hold the client's request as ``native_body`` and the
    ``anthropic-beta`` values it sent as ``betas``. The translating decoder reads the
    same bytes, so that an error event, an error document or a stream that ends short is
    the typed error it always is (retried, or failed over, before the answer begins), and
    the usage is counted; a stream's events are held until its content begins, so that
    a retry never follows events already passed on.
    """

    __slots__ = ()

    def encode(self, call: Call) -> Request:
        """The client's request with the provider's model and credential."""
        provider = call.provider
        given = call.params.get("native_body")
        if not isinstance(given, Mapping):
            raise InvalidRequestError(f"{provider}: a native Messages call needs its request")
        body = {k: v for k, v in given.items() if k not in ("model", "stream")}
        body["model"] = call.model
        if call.stream:
            body["stream"] = True
        check_auth(call)
        fixed = {"anthropic-version": ANTHROPIC_VERSION}
        betas = call.params.get("betas")
        if isinstance(betas, str) and betas:
            fixed["anthropic-beta"] = betas
        return json_request(call, body, _headers(call, fixed))

    def decode(
        self, request: Request, url: str, status: int, content_type: str | None, body: bytes
    ) -> list[Piece]:
        """The document, checked as :meth:`AnthropicMessages.decode` checks it (an error
        document raises), then passed on whole, after its usage (read whatever the call's
        ``structured``, as the stream's decoder reads it: the limiter and the spend count it)."""
        watched = request._replace(call=request.call._replace(structured=True))
        pieces = super().decode(watched, url, status, content_type, body)
        return [*(p for p in pieces if type(p) is Usage), Verbatim(body)]

    def decoder(self, request: Request, url: str) -> NativeStreamDecoder:
        watcher = MessagesStreamDecoder(request, url, structured=True)
        return NativeStreamDecoder(watcher, request.call.max_event_bytes)


class NativeStreamDecoder:
    """A Messages event stream passed on event by event (:class:`Verbatim` frames), fed
    to a :class:`MessagesStreamDecoder` too, which raises its errors and finds its end
    and usage. Frames are held until the answer's content begins (or the stream ends)."""

    __slots__ = ("_frames", "_held", "_parser", "_watcher")

    def __init__(self, watcher: MessagesStreamDecoder, max_event_bytes: int) -> None:
        self._watcher = watcher
        self._parser = SSEParser(max_event_bytes)
        self._held: list[Piece] = []

    @property
    def done(self) -> bool:
        return self._watcher.done

    @property
    def started(self) -> bool:
        return self._watcher.started

    def feed(self, data: bytes) -> list[Piece]:
        watched = self._watcher.feed(data)  # raises what the stream's events say
        try:
            events = self._parser.feed(data)
        except EventTooLargeError:  # the watcher has raised it already
            events = []
        for event in events:
            frame = f"event: {event.event}\ndata: {event.data}\n\n".encode()
            self._held.append(Verbatim(frame))
        self._held.extend(p for p in watched if type(p) is Usage)
        if not (self._watcher.started or self._watcher.done):
            return []
        out, self._held = self._held, []
        return out

    def end(self) -> list[Piece]:
        self._watcher.end()  # raises for a stream that ended short, or its error
        out, self._held = self._held, []
        return out


NATIVE = NativeMessages()
"""The pass-through codec: it holds no state, one serves every call."""
