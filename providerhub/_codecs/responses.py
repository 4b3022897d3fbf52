"""OpenAI's Responses API as a dialect clients speak to the gateway: a stateless bridge
onto chat completions, with no I/O.

:func:`chat_request` reads a ``POST /v1/responses`` body into the parameters of a chat
completion (``model``, ``messages``, ``stream`` and the rest), refusing what the bridge
cannot do with :class:`~providerhub.errors.InvalidRequestError` naming the field.
:func:`response_document` turns the chat completion that answered it into a ``response``
object, and :class:`ResponseEvents` turns a streamed one, chunk by chunk, into the
Responses event stream (``response.created`` ... ``response.completed``) as the openai
SDK's stream helper reads it: every item added before its deltas and done before the
response completes.

Nothing is stored: a request carries the whole conversation (``previous_response_id`` is
refused with a message saying so), and ``store`` is accepted but never honoured.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
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

__all__ = ["ResponseEvents", "ResponsesRequest", "chat_request", "response_document"]

# Fields that change nothing a stateless bridge does, accepted and left out: hints to
# OpenAI's own service (caching, tiers, retention), and what the answer only echoes.
_IGNORED = frozenset(
    {
        "store",
        "stream_options",
        "service_tier",
        "prompt_cache_key",
        "prompt_cache_retention",
        "truncation",
        "include",
        "top_logprobs",
        "background",
        "metadata",
    }
)
_TRANSLATED = frozenset(
    {
        "model",
        "input",
        "instructions",
        "stream",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "max_output_tokens",
        "temperature",
        "top_p",
        "text",
        "reasoning",
        "user",
        "safety_identifier",
        "previous_response_id",
        "conversation",
        "prompt",
        "max_tool_calls",
    }
)
_ROLES = {"user": "user", "system": "system", "developer": "system", "assistant": "assistant"}
_TEXT_PARTS = frozenset({"input_text", "output_text", "text", "refusal"})
# Chat finish reasons that leave a response incomplete, and the reason Responses gives.
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


@dataclass
class ResponsesRequest(BridgedRequest):
    """A ``POST /v1/responses`` request read: the chat completion to make (``chat``, with
    ``model``, ``messages`` and ``stream``), and what the answer echoes back."""

    echo: dict[str, Any] = field(default_factory=dict)


def chat_request(doc: Any) -> ResponsesRequest:
    """The chat completion a Responses request ``doc`` (its parsed JSON body) asks for.

    ``input`` (a string, or items: messages, ``function_call``, ``function_call_output``)
    and ``instructions`` become ``messages``; function ``tools`` (the flat Responses
    format) and ``tool_choice`` become chat's; ``max_output_tokens`` is ``max_tokens``,
    ``text.format`` is ``response_format`` and ``reasoning.effort`` is
    ``reasoning_effort``. Raises :class:`InvalidRequestError` naming the field for what
    cannot be bridged: stored state (``previous_response_id``, ``conversation``,
    ``prompt``, item references), tools other than functions, unknown fields.
    """
    if not isinstance(doc, dict):
        raise InvalidRequestError("the request body must be a JSON object")
    for name in doc:
        if name not in _TRANSLATED and name not in _IGNORED:
            raise InvalidRequestError(
                f"{name!r} is not a field this gateway's /v1/responses takes", param=name
            )
    for name in ("previous_response_id", "conversation", "prompt"):
        if doc.get(name) is not None:
            raise InvalidRequestError(
                f"this gateway stores no responses, so {name} cannot be used: send the whole "
                "conversation in input (earlier messages, function_call and "
                "function_call_output items)",
                param=name,
            )
    if doc.get("background"):
        raise InvalidRequestError(
            "this gateway does not run responses in the background: leave background out",
            param="background",
        )
    model = doc.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequestError("model must be a model name (a non-empty string)", param="model")
    messages: list[dict[str, Any]] = []
    instructions = doc.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise InvalidRequestError("instructions must be a string", param="instructions")
        messages.append({"role": "system", "content": instructions})
    messages.extend(_messages(doc.get("input")))
    chat: dict[str, Any] = {"model": model, "messages": messages}
    read_stream(doc, chat, "stream must be true or false")
    echo: dict[str, Any] = {
        "instructions": instructions,
        "tools": [],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "metadata": doc.get("metadata") or {},
        "text": {"format": {"type": "text"}},
    }
    tools = doc.get("tools")
    if tools is not None:
        chat["tools"] = _tools(tools)
        echo["tools"] = tools
    choice = doc.get("tool_choice")
    if choice is not None:
        chat["tool_choice"] = _tool_choice(choice)
        echo["tool_choice"] = choice
    if doc.get("parallel_tool_calls") is not None:
        chat["parallel_tool_calls"] = echo["parallel_tool_calls"] = doc["parallel_tool_calls"]
    for ours, theirs in (
        ("max_output_tokens", "max_tokens"),
        ("temperature", "temperature"),
        ("top_p", "top_p"),
    ):
        if doc.get(ours) is not None:
            chat[theirs] = echo[ours] = doc[ours]
    user = doc.get("safety_identifier", doc.get("user"))
    if user is not None:
        chat["user"] = user
    text = doc.get("text")
    if text is not None:
        format_ = _response_format(text)
        if format_ is not None:
            chat["response_format"] = format_
        echo["text"] = text
    reasoning = doc.get("reasoning")
    if reasoning is not None:
        if not isinstance(reasoning, dict):
            raise InvalidRequestError("reasoning must be an object", param="reasoning")
        if reasoning.get("effort") is not None:
            chat["reasoning_effort"] = reasoning["effort"]
        echo["reasoning"] = reasoning
    return ResponsesRequest(chat, echo)


def _messages(items: Any) -> list[dict[str, Any]]:
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    if not isinstance(items, list) or not items:
        raise InvalidRequestError(
            "input must be a string or a non-empty list of items", param="input"
        )
    messages: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        where = f"input[{index}]"
        if not isinstance(item, dict):
            raise InvalidRequestError(f"{where} must be an object", param="input")
        kind = item.get("type", "message")
        if kind == "message":
            messages.append(_message(item, where))
        elif kind == "function_call":
            call = {
                "id": _string(item, "call_id", where),
                "type": "function",
                "function": {
                    "name": _string(item, "name", where),
                    "arguments": _string(item, "arguments", where, empty=True),
                },
            }
            last = messages[-1] if messages else None
            # Calls made in one turn are one assistant message, as chat has them.
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": _string(item, "call_id", where),
                    "content": _output_text(item.get("output"), where),
                }
            )
        elif kind == "reasoning":
            continue  # the model's own notes from an earlier turn: chat has no place for them
        elif kind == "item_reference":
            raise InvalidRequestError(
                f"{where} refers to a stored item, and this gateway stores none: send the item "
                "itself",
                param="input",
            )
        else:
            raise InvalidRequestError(
                f"{where} is a {kind!r} item; this gateway takes message, function_call and "
                "function_call_output items",
                param="input",
            )
    return messages


def _message(item: dict[str, Any], where: str) -> dict[str, Any]:
    role = _ROLES.get(item.get("role"))  # type: ignore[arg-type]
    if role is None:
        raise InvalidRequestError(
            f"{where}.role must be user, system, developer or assistant, not {item.get('role')!r}",
            param="input",
        )
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise InvalidRequestError(
            f"{where}.content must be a string or a list of parts", param="input"
        )
    texts: list[str] = []
    parts: list[dict[str, Any]] = []
    for number, part in enumerate(content):
        spot = f"{where}.content[{number}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in _TEXT_PARTS:
            text = part.get("text", part.get("refusal"))
            if not isinstance(text, str):
                raise InvalidRequestError(f"{spot}.text must be a string", param="input")
            texts.append(text)
            parts.append({"type": "text", "text": text})
        elif kind == "input_image" and role == "user":
            url = part.get("image_url")
            if not isinstance(url, str) or not url:
                raise InvalidRequestError(
                    f"{spot} needs an image_url (a URL or a data: URI); file_id needs stored "
                    "files, which this gateway does not have",
                    param="input",
                )
            image: dict[str, Any] = {"url": url}
            if part.get("detail") is not None:
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        else:
            raise InvalidRequestError(
                f"{spot} is a {kind!r} part; this gateway takes input_text, output_text and "
                "(from the user) input_image parts",
                param="input",
            )
    if len(parts) == len(texts):
        return {"role": role, "content": "".join(texts)}
    return {"role": role, "content": parts}


def _output_text(output: Any, where: str) -> str:
    if isinstance(output, str):
        return output
    if isinstance(output, list) and all(
        isinstance(p, dict) and p.get("type") in _TEXT_PARTS and isinstance(p.get("text"), str)
        for p in output
    ):
        return "".join(p["text"] for p in output)
    raise InvalidRequestError(
        f"{where}.output must be a string or a list of text parts", param="input"
    )


def _string(item: dict[str, Any], name: str, where: str, *, empty: bool = False) -> str:
    value = item.get(name)
    if not isinstance(value, str) or not (value or empty):
        raise InvalidRequestError(f"{where}.{name} must be a non-empty string", param="input")
    return value


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise InvalidRequestError("tools must be a list", param="tools")
    found: list[dict[str, Any]] = []
    for index, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind != "function":
            raise InvalidRequestError(
                f"tools[{index}] is a {kind!r} tool; this gateway calls function tools only "
                "(OpenAI's built-in tools run on OpenAI's side)",
                param="tools",
            )
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequestError(f"tools[{index}].name must be a string", param="tools")
        function: dict[str, Any] = {"name": name}
        for key in ("description", "parameters", "strict"):
            if tool.get(key) is not None:
                function[key] = tool[key]
        found.append({"type": "function", "function": function})
    return found


def _tool_choice(choice: Any) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = choice.get("name")
        if isinstance(name, str) and name:
            return {"type": "function", "function": {"name": name}}
    raise InvalidRequestError(
        'tool_choice must be "auto", "none", "required" or {"type": "function", "name": ...}',
        param="tool_choice",
    )


def _response_format(text: Any) -> dict[str, Any] | None:
    format_ = text.get("format") if isinstance(text, dict) else None
    kind = format_.get("type") if isinstance(format_, dict) else None
    if format_ is None or kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema" and isinstance(format_.get("schema"), dict):
        schema = {
            k: format_[k] for k in ("name", "schema", "strict", "description") if k in format_
        }
        return {"type": "json_schema", "json_schema": schema}
    raise InvalidRequestError(
        'text.format must be {"type": "text"}, {"type": "json_object"} or '
        '{"type": "json_schema", "name": ..., "schema": {...}}',
        param="text",
    )


# -- answers ---------------------------------------------------------------------------------


def _usage(usage: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not usage:
        return None
    given = usage.get("prompt_tokens") or 0
    taken = usage.get("completion_tokens") or 0
    cached = cached_tokens(usage)
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return {
        "input_tokens": given,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": taken,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": usage.get("total_tokens") or given + taken,
    }


def _message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": content if status != "in_progress" else [],
    }


def _call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str
) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def _envelope(
    request: ResponsesRequest,
    response_id: str,
    created_at: int,
    model: str,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None,
    finish: str | None,
) -> dict[str, Any]:
    reason = _INCOMPLETE.get(finish or "")
    if status == "completed" and reason is not None:
        status = "incomplete"
    doc: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "model": model,
        "output": output,
        "error": None,
        "incomplete_details": {"reason": reason} if status == "incomplete" else None,
        "usage": usage,
        "temperature": None,
        "top_p": None,
        "max_output_tokens": None,
        "previous_response_id": None,
        "store": False,
        **request.echo,
    }
    texts = [
        part["text"]
        for item in output
        if item["type"] == "message"
        for part in item["content"]
        if part["type"] == "output_text"
    ]
    doc["output_text"] = "".join(texts)
    return doc


def response_document(
    completion: Mapping[str, Any],
    request: ResponsesRequest,
    *,
    response_id: str | None = None,
    created_at: int | None = None,
) -> dict[str, Any]:
    """The ``response`` object for the chat completion ``completion`` (its JSON form) that
    answered ``request``: a message item for its text, a ``function_call`` item for each
    tool call (its ``call_id`` the chat call's id), ``output_text``, usage in Responses'
    terms, and ``status`` ``incomplete`` when the answer stopped at ``max_output_tokens``
    or a content filter."""
    answer = read_answer(completion)
    output: list[dict[str, Any]] = []
    if answer.text:
        output.append(_message_item(new_id("msg_"), answer.text, "completed"))
    for call in answer.calls:
        output.append(
            _call_item(
                new_id("fc_"), call.id or new_id("call_"), call.name, call.arguments, "completed"
            )
        )
    return _envelope(
        request,
        response_id or new_id("resp_"),
        int(time.time()) if created_at is None else created_at,
        str(completion.get("model") or request.model),
        "completed",
        output,
        _usage(completion.get("usage")),
        answer.finish,
    )


class ResponseEvents(ChunkEvents):
    """The Responses event stream of one streamed chat completion, as Server-Sent Events
    (``event: <type>`` and ``data: <json>``), fed the chat stream as it arrives.

    :meth:`start` gives ``response.created`` and ``response.in_progress``; :meth:`text`
    and :meth:`chunk` give the events a piece of text or a chat chunk (its JSON form) make
    (an item added before its deltas, a message's content part around its text); and
    :meth:`finish` closes what is open and gives ``response.completed`` (or
    ``response.incomplete``, with its reason, for an answer cut at its length), whose
    response holds every item whole. :meth:`fail` ends a stream that broke with
    ``response.failed``. Each event has its ``sequence_number``.
    """

    def __init__(
        self,
        request: ResponsesRequest,
        *,
        model: str | None = None,
        dumps: Dumps = compact,
        response_id: str | None = None,
        created_at: int | None = None,
    ) -> None:
        self._request = request
        self._dumps = dumps
        self.id = response_id or new_id("resp_")
        self._created_at = int(time.time()) if created_at is None else created_at
        self.model = model or request.model
        self._sequence = 0
        self._output: list[dict[str, Any]] = []
        # The message item taking text, and its text so far, while it is open.
        self._message: dict[str, Any] | None = None
        self._text: list[str] = []
        # Open function calls by the chat stream's tool-call index.
        self._calls: dict[int, dict[str, Any]] = {}
        self._arguments: dict[int, list[str]] = {}
        self._call_at: dict[int, int] = {}
        self._usage: Mapping[str, Any] | None = None  # as the chat stream sent it
        self._finish: str | None = None
        self._delta_head = b""
        self._delta_middle = b""

    def _event(self, kind: str, **fields: Any) -> bytes:
        doc = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + self._dumps(doc) + b"\n\n"

    def _response(self, status: str) -> dict[str, Any]:
        output = self._output if status != "in_progress" else []
        return _envelope(
            self._request,
            self.id,
            self._created_at,
            self.model,
            status,
            output,
            _usage(self._usage) if status != "in_progress" else None,
            self._finish,
        )

    def start(self) -> bytes:
        """``response.created`` and ``response.in_progress``."""
        response = self._response("in_progress")
        return self._event("response.created", response=response) + self._event(
            "response.in_progress", response=response
        )

    def text(self, delta: str) -> bytes:
        """The events of ``delta``, a piece of the answer's text."""
        if not delta:
            return b""
        out = b""
        if self._message is None:
            out += self._close_calls()
            item = _message_item(new_id("msg_"), "", "in_progress")
            self._message = item
            self._text = []
            index = len(self._output)
            self._output.append(item)
            out += self._event("response.output_item.added", output_index=index, item=item)
            out += self._event(
                "response.content_part.added",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                part={"type": "output_text", "text": "", "annotations": [], "logprobs": []},
            )
            # Every delta of the item is this event with another number and text: made
            # around them, with no dict built per piece (the gateway's hot path).
            self._delta_head = (
                b"event: response.output_text.delta\n"
                b'data: {"type":"response.output_text.delta","sequence_number":'
            )
            self._delta_middle = (
                b',"item_id":' + self._dumps(item["id"]) + b',"output_index":%d,'
                b'"content_index":0,"delta":' % index
            )
        self._text.append(delta)
        number = self._sequence
        self._sequence += 1
        return b"".join(
            (
                out,
                self._delta_head,
                b"%d" % number,
                self._delta_middle,
                self._dumps(delta),
                b',"logprobs":[]}\n\n',
            )
        )

    def chunk(self, chunk: Mapping[str, Any]) -> bytes:
        """The events of a chat completion chunk ``chunk`` (its JSON form): its text, its
        tool-call fragments, and its usage and finish reason, which :meth:`finish` uses."""
        if chunk.get("model"):
            self.model = chunk["model"]
        return super().chunk(chunk)

    def _call(self, call: Mapping[str, Any]) -> bytes:
        index = call.get("index", 0)
        function = call.get("function") or {}
        out = b""
        item = self._calls.get(index)
        if item is None:
            out += self._close_message()
            item = _call_item(
                new_id("fc_"),
                call.get("id") or new_id("call_"),
                function.get("name") or "",
                "",
                "in_progress",
            )
            self._calls[index] = item
            self._arguments[index] = []
            self._call_at[index] = len(self._output)
            self._output.append(item)
            out += self._event(
                "response.output_item.added", output_index=self._call_at[index], item=item
            )
        arguments = function.get("arguments")
        if arguments:
            self._arguments[index].append(arguments)
            out += self._event(
                "response.function_call_arguments.delta",
                item_id=item["id"],
                output_index=self._call_at[index],
                delta=arguments,
            )
        return out

    def _close_message(self) -> bytes:
        item = self._message
        if item is None:
            return b""
        self._message = None
        text = "".join(self._text)
        index = self._output.index(item)
        whole = _message_item(item["id"], text, "completed")
        self._output[index] = whole
        part = whole["content"][0]
        return (
            self._event(
                "response.output_text.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                text=text,
                logprobs=[],
            )
            + self._event(
                "response.content_part.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                part=part,
            )
            + self._event("response.output_item.done", output_index=index, item=whole)
        )

    def _close_calls(self) -> bytes:
        out = b""
        for index, item in sorted(self._calls.items(), key=lambda kv: self._call_at[kv[0]]):
            arguments = "".join(self._arguments[index])
            at = self._call_at[index]
            whole = _call_item(item["id"], item["call_id"], item["name"], arguments, "completed")
            self._output[at] = whole
            out += self._event(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=at,
                arguments=arguments,
            )
            out += self._event("response.output_item.done", output_index=at, item=whole)
        self._calls.clear()
        self._arguments.clear()
        self._call_at.clear()
        return out

    def finish(self) -> bytes:
        """Close the open items and end the stream: ``response.completed``, or
        ``response.incomplete`` for an answer cut at its length or by a filter."""
        out = self._close_message() + self._close_calls()
        response = self._response("completed")
        kind = "response.incomplete" if response["status"] == "incomplete" else "response.completed"
        return out + self._event(kind, response=response)

    def fail(self, code: str, message: str) -> bytes:
        """End a stream that broke: ``response.failed`` with ``code`` and ``message`` (the
        gateway's words, never the upstream's) and the items as far as they came."""
        response = self._response("failed")
        response["error"] = {"code": code, "message": message}
        response["incomplete_details"] = None
        return self._event("response.failed", response=response)
