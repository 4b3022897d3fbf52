"""Anthropic's Messages API as a dialect clients speak to the gateway, with no I/O: a
request read into a chat completion's parameters, and the chat answer written back as a
``message`` or as the Messages event stream.

:func:`chat_request` reads a ``POST /v1/messages`` body, refusing what cannot be bridged
with :class:`~providerhub.errors.InvalidRequestError` naming the field (a missing
``max_tokens`` among them, as the API does). :func:`message_document` writes a whole
answer; :class:`MessageEvents` writes a streamed one with the API's exact grammar:
``message_start``; for each content block ``content_block_start``, its ``text_delta`` or
``input_json_delta`` events and ``content_block_stop``; then ``message_delta`` with the
``stop_reason`` and usage, and ``message_stop``. :func:`error_document` is an error in
Anthropic's shape, and :func:`count_tokens` the estimate ``/v1/messages/count_tokens``
answers with.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidRequestError
from .bridge import (
    BridgedRequest,
    ChunkEvents,
    Dumps,
    cached_tokens,
    compact,
    read_answer,
    read_stream,
)
from .completions import new_id

__all__ = [
    "MessageEvents",
    "MessagesRequest",
    "chat_request",
    "count_tokens",
    "error_document",
    "error_type",
    "message_document",
]

_FIELDS = frozenset(
    {
        "model",
        "messages",
        "system",
        "max_tokens",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "metadata",
        # Asked of Anthropic's own models; a bridge to another provider has no equivalent,
        # and the native Anthropic provider receives the request whole.
        "thinking",
        "service_tier",
        "container",
        "context_management",
        "mcp_servers",
    }
)
_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


@dataclass
class MessagesRequest(BridgedRequest):
    """A ``POST /v1/messages`` request read: the chat completion to make (``chat``, with
    ``model``, ``messages`` and ``stream``), and the request as the client sent it
    (``original``), for a provider that speaks Messages itself."""

    original: dict[str, Any]


def chat_request(doc: Any) -> MessagesRequest:
    """The chat completion a Messages request ``doc`` (its parsed JSON body) asks for.

    ``system`` (a string or text blocks) is a system message; content blocks become chat
    content (text, images as ``image_url`` parts with a data URI or the URL), assistant
    ``tool_use`` blocks become ``tool_calls`` (``input`` as JSON text), ``tool_result``
    blocks become ``tool`` messages; ``tools`` and ``tool_choice`` become chat's
    (``any`` is ``required``; ``disable_parallel_tool_use`` is ``parallel_tool_calls``
    false); ``stop_sequences`` is ``stop``; ``metadata.user_id`` is ``user``. ``top_k``
    and ``thinking`` have no chat equivalent and are left out (a native Anthropic
    provider gets them). Raises :class:`InvalidRequestError` naming the field otherwise.
    """
    if not isinstance(doc, dict):
        raise InvalidRequestError("the request body must be a JSON object")
    for name in doc:
        if name not in _FIELDS:
            raise InvalidRequestError(f"{name}: Extra inputs are not permitted", param=name)
    model = doc.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequestError("model: Field required (a model name)", param="model")
    max_tokens = doc.get("max_tokens")
    if max_tokens is None:
        raise InvalidRequestError("max_tokens: Field required", param="max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise InvalidRequestError(
            "max_tokens: must be a whole number of at least 1", param="max_tokens"
        )
    messages: list[dict[str, Any]] = []
    system = doc.get("system")
    if system is not None:
        messages.append({"role": "system", "content": _system_text(system)})
    turns = doc.get("messages")
    if not isinstance(turns, list) or not turns:
        raise InvalidRequestError("messages: must be a non-empty list", param="messages")
    for index, turn in enumerate(turns):
        messages.extend(_turn(turn, f"messages.{index}"))
    chat: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": max_tokens}
    read_stream(doc, chat, "stream: must be true or false")
    for name in ("temperature", "top_p"):
        if doc.get(name) is not None:
            chat[name] = doc[name]
    stops = doc.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise InvalidRequestError(
                "stop_sequences: must be a list of strings", param="stop_sequences"
            )
        if stops:
            chat["stop"] = stops
    if doc.get("tools") is not None:
        chat["tools"] = _tools(doc["tools"])
    if doc.get("tool_choice") is not None:
        chat.update(_tool_choice(doc["tool_choice"]))
    metadata = doc.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        chat["user"] = metadata["user_id"]
    return MessagesRequest(chat, doc)


def _system_text(system: Any) -> str:
    if isinstance(system, str):
        return system
    if isinstance(system, list) and all(
        isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        for b in system
    ):
        return "\n\n".join(b["text"] for b in system)
    raise InvalidRequestError("system: must be a string or a list of text blocks", param="system")


def _turn(turn: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(turn, dict) or turn.get("role") not in ("user", "assistant"):
        raise InvalidRequestError(f"{where}.role: must be user or assistant", param="messages")
    role = turn["role"]
    content = turn.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if not isinstance(content, list):
        raise InvalidRequestError(
            f"{where}.content: must be a string or a list of content blocks", param="messages"
        )
    if role == "assistant":
        return [_assistant(content, where)]
    # A user turn's tool results answer the calls of the turn before: in chat they are
    # tool messages, which come first; the rest of the turn follows as a user message.
    found: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for spot, kind, block in _blocks(content, where):
        if kind == "tool_result":
            found.append(_tool_result(block, spot))
        elif kind == "text":
            parts.append({"type": "text", "text": _text(block, spot)})
        elif kind == "image":
            parts.append({"type": "image_url", "image_url": {"url": _image_url(block, spot)}})
        else:
            raise InvalidRequestError(
                f"{spot}: a {kind!r} block cannot be sent to this model; the gateway "
                "translates text, image, tool_use and tool_result blocks",
                param="messages",
            )
    if parts:
        if all(part["type"] == "text" for part in parts):
            found.append({"role": "user", "content": "".join(p["text"] for p in parts)})
        else:
            found.append({"role": "user", "content": parts})
    return found


def _blocks(content: list[Any], where: str) -> Iterator[tuple[str, str | None, Any]]:
    """Each block of a turn's ``content``: where it stands (for an error), its type, the
    block."""
    for number, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        yield f"{where}.content.{number}", kind, block


def _assistant(content: list[Any], where: str) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for spot, kind, block in _blocks(content, where):
        if kind == "text":
            texts.append(_text(block, spot))
        elif kind == "tool_use":
            name, call_id = block.get("name"), block.get("id")
            if not isinstance(name, str) or not isinstance(call_id, str):
                raise InvalidRequestError(
                    f"{spot}: a tool_use block needs an id and a name", param="messages"
                )
            arguments = json.dumps(block.get("input") or {}, ensure_ascii=False)
            calls.append(
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            )
        elif kind in ("thinking", "redacted_thinking"):
            continue  # the model's own notes: another provider cannot read them
        else:
            raise InvalidRequestError(
                f"{spot}: a {kind!r} block cannot be sent to this model", param="messages"
            )
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _text(block: dict[str, Any], spot: str) -> str:
    text = block.get("text")
    if not isinstance(text, str):
        raise InvalidRequestError(f"{spot}.text: must be a string", param="messages")
    return text


def _image_url(block: dict[str, Any], spot: str) -> str:
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64" and isinstance(source, dict):
        media, data = source.get("media_type"), source.get("data")
        if isinstance(media, str) and isinstance(data, str):
            return f"data:{media};base64,{data}"
    if kind == "url" and isinstance(source, dict) and isinstance(source.get("url"), str):
        return str(source["url"])
    raise InvalidRequestError(
        f"{spot}.source: must be a base64 source (media_type and data) or a url source",
        param="messages",
    )


def _tool_result(block: dict[str, Any], spot: str) -> dict[str, Any]:
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequestError(f"{spot}.tool_use_id: Field required", param="messages")
    content = block.get("content", "")
    if isinstance(content, list):
        texts = []
        for part in content:
            if not (isinstance(part, dict) and part.get("type") == "text"):
                raise InvalidRequestError(
                    f"{spot}.content: only text blocks can be sent back as a tool's result "
                    "to this model",
                    param="messages",
                )
            texts.append(_text(part, spot))
        content = "".join(texts)
    if not isinstance(content, str):
        raise InvalidRequestError(
            f"{spot}.content: must be a string or text blocks", param="messages"
        )
    if block.get("is_error"):
        content = f"Error: {content}"
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise InvalidRequestError("tools: must be a list", param="tools")
    found = []
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type", "custom") != "custom":
            kind = tool.get("type") if isinstance(tool, dict) else None
            raise InvalidRequestError(
                f"tools.{index}: {kind!r} is a tool Anthropic runs itself; through this "
                "gateway, tools are your own (name, description, input_schema)",
                param="tools",
            )
        name, schema = tool.get("name"), tool.get("input_schema")
        if not isinstance(name, str) or not isinstance(schema, dict):
            raise InvalidRequestError(
                f"tools.{index}: needs a name and an input_schema object", param="tools"
            )
        function: dict[str, Any] = {"name": name, "parameters": schema}
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        found.append({"type": "function", "function": function})
    return found


def _tool_choice(choice: Any) -> dict[str, Any]:
    kind = choice.get("type") if isinstance(choice, dict) else None
    found: dict[str, Any]
    if kind in ("auto", "none"):
        found = {"tool_choice": kind}
    elif kind == "any":
        found = {"tool_choice": "required"}
    elif kind == "tool" and isinstance(choice.get("name"), str):
        found = {"tool_choice": {"type": "function", "function": {"name": choice["name"]}}}
    else:
        raise InvalidRequestError(
            'tool_choice: must be {"type": "auto"}, {"type": "any"}, {"type": "none"} or '
            '{"type": "tool", "name": ...}',
            param="tool_choice",
        )
    if choice.get("disable_parallel_tool_use") is True and kind != "none":
        found["parallel_tool_calls"] = False
    return found


# -- answers ---------------------------------------------------------------------------------


def _usage(usage: Mapping[str, Any] | None) -> dict[str, Any]:
    usage = usage or {}
    cached = cached_tokens(usage)
    return {
        "input_tokens": max((usage.get("prompt_tokens") or 0) - cached, 0),
        "output_tokens": usage.get("completion_tokens") or 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }


def _input(arguments: str) -> Any:
    try:
        found = json.loads(arguments) if arguments else {}
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _stop_reason(finish: str | None, called: bool) -> str:
    # An answer that called a tool stopped for it, whatever the upstream's reason says.
    if called and finish in (None, "stop", "tool_calls", "function_call"):
        return "tool_use"
    return _STOP_REASONS.get(finish or "stop", "end_turn")


def message_document(completion: Mapping[str, Any], request: MessagesRequest) -> dict[str, Any]:
    """The ``message`` for the chat completion ``completion`` (its JSON form) that
    answered ``request``: a text block, a ``tool_use`` block per tool call (``input``
    parsed from its arguments, its chat id kept), ``stop_reason`` and usage (cached
    prompt tokens as ``cache_read_input_tokens``)."""
    answer = read_answer(completion)
    content: list[dict[str, Any]] = []
    if answer.text:
        content.append({"type": "text", "text": answer.text})
    for call in answer.calls:
        content.append(
            {
                "type": "tool_use",
                "id": call.id or new_id("toolu_"),
                "name": call.name,
                "input": _input(call.arguments),
            }
        )
    return {
        "id": new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": completion.get("model") or request.model,
        "content": content,
        "stop_reason": _stop_reason(answer.finish, bool(answer.calls)),
        "stop_sequence": None,
        "usage": _usage(completion.get("usage")),
    }


class MessageEvents(ChunkEvents):
    """The Messages event stream of one streamed chat completion, as Server-Sent Events
    (``event: <type>`` and ``data: <json>``), fed the chat stream as it arrives.

    :meth:`start` gives ``message_start``; :meth:`text` and :meth:`chunk` give the
    events a piece of text or a chat chunk (its JSON form) make, one content block at a
    time (the open block stops before another starts); :meth:`finish` stops the open block
    and gives ``message_delta`` (``stop_reason``, usage) and ``message_stop``.
    :meth:`fail` ends a stream that broke with an ``error`` event, which the anthropic
    SDK raises.
    """

    def __init__(
        self, request: MessagesRequest, *, model: str | None = None, dumps: Dumps = compact
    ) -> None:
        self._dumps = dumps
        self.id = new_id("msg_")
        self.model = model or request.model
        self._index = -1
        self._open: str | None = None  # "text", or the chat index of the open tool call
        self._calls: set[int] = set()
        self._usage: Mapping[str, Any] | None = None
        self._finish: str | None = None
        self._text_head = b""

    def _event(self, kind: str, doc: dict[str, Any]) -> bytes:
        return (
            b"event: " + kind.encode() + b"\ndata: " + self._dumps({"type": kind, **doc}) + b"\n\n"
        )

    def start(self) -> bytes:
        """``message_start``, with the message as it begins (no content yet)."""
        message: dict[str, Any] = {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return self._event("message_start", {"message": message})

    def _begin(self, key: str, block: dict[str, Any]) -> bytes:
        out = self._stop()
        self._index += 1
        self._open = key
        return out + self._event(
            "content_block_start", {"index": self._index, "content_block": block}
        )

    def _stop(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return self._event("content_block_stop", {"index": self._index})

    def text(self, delta: str) -> bytes:
        """The events of ``delta``, a piece of the answer's text."""
        if not delta:
            return b""
        out = b""
        if self._open != "text":
            out = self._begin("text", {"type": "text", "text": ""})
            # Every delta of the block is this event around another text: no dict built
            # per piece (the gateway's hot path).
            self._text_head = (
                b"event: content_block_delta\n"
                b'data: {"type":"content_block_delta","index":%d,'
                % self._index
                + b'"delta":{"type":"text_delta","text":'
            )
        return b"".join((out, self._text_head, self._dumps(delta), b"}}\n\n"))

    def _call(self, call: Mapping[str, Any]) -> bytes:
        index = call.get("index", 0)
        function = call.get("function") or {}
        key = f"call {index}"
        out = b""
        if self._open != key:
            if index in self._calls:
                # A fragment of a call whose block has stopped cannot be sent any more:
                # the chat stream's calls come one after the other (see toolcalls.py).
                return b""
            self._calls.add(index)
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": call.get("id") or new_id("toolu_"),
                "name": function.get("name") or "",
                "input": {},
            }
            out += self._begin(key, block)
        arguments = function.get("arguments")
        if arguments:
            out += self._event(
                "content_block_delta",
                {
                    "index": self._index,
                    "delta": {"type": "input_json_delta", "partial_json": arguments},
                },
            )
        return out

    def finish(self) -> bytes:
        """Stop the open block, then ``message_delta`` and ``message_stop``."""
        usage = _usage(self._usage)
        delta = {
            "stop_reason": _stop_reason(self._finish, bool(self._calls)),
            "stop_sequence": None,
        }
        return (
            self._stop()
            + self._event("message_delta", {"delta": delta, "usage": usage})
            + self._event("message_stop", {})
        )

    def fail(self, status: int, message: str) -> bytes:
        """An ``error`` event for a stream that broke, of the type ``status`` has, with
        ``message`` (the gateway's words, never the upstream's)."""
        return self._event("error", {"error": {"type": error_type(status), "message": message}})


def error_type(status: int) -> str:
    """Anthropic's error type for an HTTP ``status``: ``invalid_request_error`` for 400,
    ``not_found_error`` for 404, ``overloaded_error`` for 503 and 529, ``api_error`` for
    what has no type of its own."""
    return _ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")


def error_document(status: int, message: str) -> dict[str, Any]:
    """An error answer in Anthropic's shape:
    ``{"type": "error", "error": {"type": ..., "message": ...}}``."""
    return {"type": "error", "error": {"type": error_type(status), "message": message}}


def count_tokens(request: MessagesRequest) -> int:
    """An estimate of the input tokens of ``request``: the characters of its text (the
    system prompt, messages, tool calls and results, tool definitions as JSON) over
    four, the rule of thumb for English with BPE tokenizers, plus four per message for
    the role and framing, and a fixed 1,600 per image (about what a 1,000 x 1,000 picture
    costs at Anthropic)."""
    chat = request.chat
    characters = 0
    images = 0
    for message in chat["messages"]:
        content = message.get("content")
        if isinstance(content, str):
            characters += len(content)
        elif isinstance(content, list):
            for part in content:
                if part.get("type") == "text":
                    characters += len(part["text"])
                else:
                    images += 1
        for call in message.get("tool_calls") or ():
            characters += len(call["function"]["name"]) + len(call["function"]["arguments"])
    if chat.get("tools"):
        characters += len(json.dumps(chat["tools"]))
    return (characters + 3) // 4 + 4 * len(chat["messages"]) + 1600 * images
