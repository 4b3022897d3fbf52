"""A local stand-in for Anthropic's Messages API: real HTTP on 127.0.0.1, answering
``POST /v1/messages`` as Anthropic's public reference describes it, with scripted replies
and faults.

It is :class:`~providerhub.testing.OpenAIServer`'s machinery (threads, scripting, the
recorded requests) with a handler that speaks the other dialect: the ``x-api-key`` and
``anthropic-version`` headers checked, a Message document or the event stream
(``message_start``, ``ping``, ``content_block_start``/``_delta``/``_stop``,
``message_delta``, ``message_stop``, each as an ``event:`` line and a ``data:`` line),
error bodies ``{"type": "error", "error": {"type": ..., "message": ...}}`` with the
statuses the API gives them, and a ``request-id`` header on every answer. The tests drive
it with the official ``anthropic`` SDK too, so a stand-in that drifts from the real
format fails there.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._server import _EVENT_STREAM, OpenAIServer, RecordedRequest, Reply, _Handler

__all__ = ["ERROR_TYPES", "AnthropicReply", "AnthropicServer"]

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
"""The ``error.type`` the API sends with each status (its "Errors" reference)."""


def error_body(kind: str, message: str) -> str:
    """An error document as the API sends it."""
    return json.dumps({"type": "error", "error": {"type": kind, "message": message}})


@dataclass
class AnthropicReply(Reply):
    """What :class:`AnthropicServer` does for one request: a :class:`Reply` read in the
    Messages API's terms.

    ``chunks`` are the text's deltas (None echoes the last user message); ``tool_calls``
    the ``tool_use`` blocks (``{"name": ..., "arguments": {...}}``, with an optional
    ``"id"``); ``thinking`` the deltas of a thinking block sent before the text;
    ``stop_reason`` Anthropic's (by default ``tool_use`` when there are tool calls, else
    ``end_turn``); ``usage`` Anthropic's counts (``input_tokens``, ``output_tokens``,
    ``cache_creation_input_tokens``, ``cache_read_input_tokens``; counted from the
    request and the answer when None). Faults: ``reset``, ``stall``, ``cut`` (the stream
    ends without ``message_stop``; a document is cut in half) and ``error_event`` (an
    ``error`` event of ``error_type``, by default ``overloaded_error``), after ``after``
    text deltas. ``split`` sends a stream a byte at a time."""

    thinking: Sequence[str] = ()
    stop_reason: str | None = None
    error_type: str = "overloaded_error"
    split: bool = False
    """Send the event stream one byte per HTTP chunk, as a slow proxy may deliver it."""

    @classmethod
    def error(
        cls,
        status: int,
        message: str = "error",
        *,
        retry_after: str | None = None,
        error_type: str | None = None,
    ) -> AnthropicReply:
        """An HTTP error status with the API's error body; ``error_type`` defaults to
        the one the API sends with ``status`` (:data:`ERROR_TYPES`)."""
        headers = {"retry-after": retry_after} if retry_after is not None else {}
        kind = error_type or ERROR_TYPES.get(status, "api_error")
        return cls(
            status=status,
            headers=headers,
            body=error_body(kind, message),
            content_type="application/json",
            error_type=kind,
        )


class AnthropicServer(OpenAIServer):
    """Serves ``POST /v1/messages`` on 127.0.0.1 as Anthropic's Messages API does.

    ::

        with AnthropicServer(api_key="sk-ant-test") as server:
            server.script(AnthropicReply.error(529, "Overloaded"), AnthropicReply.text("Hi"))
            ...  # point a provider, or anthropic.Anthropic(base_url=server.url), at it

    Scripting, ``responder``, ``default`` and :attr:`requests` are
    :class:`~providerhub.testing.OpenAIServer`'s; a plain :class:`Reply` is read as an
    :class:`AnthropicReply` would be. With ``api_key`` set, a request whose key (its
    ``x-api-key``, else its ``Authorization: Bearer`` token, as the ``anthropic`` SDK 2.x
    sends it) differs is answered 401 ``authentication_error``, as the API answers a wrong
    key. Every request must carry ``anthropic-version`` (any version) and a body with ``model``,
    ``max_tokens`` and ``messages``, or it is answered 400 ``invalid_request_error``.
    Refused requests are recorded, and take no scripted reply. ``GET /v1/models`` lists
    :attr:`models` as the API's model list does.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str | None = None,
        models: Sequence[str] = ("claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5"),
    ) -> None:
        super().__init__(host, port)
        self.api_key = api_key
        self.models = list(models)
        """What ``GET /v1/models`` lists, one page, newest first."""
        self.default = AnthropicReply()
        self._httpd.RequestHandlerClass = _MessagesHandler
        self._ids = itertools.count(1)

    def _next_id(self) -> int:
        with self._lock:
            return next(self._ids)


class _MessagesHandler(_Handler):
    _request_id = ""
    _message_id = ""
    _split = False

    def do_GET(self) -> None:
        owner = self.server.owner
        assert isinstance(owner, AnthropicServer)
        self._request_id = f"req_local_{owner._next_id():06d}"
        owner._keep(self._recorded())
        if self.path.split("?")[0].rstrip("/") != "/v1/models":
            self._refuse(404, "not_found_error", f"Not found: {self.path}")
            return
        refused = self._refusal(owner, None)
        if refused is not None:
            self._refuse(*refused)
            return
        data = [
            {
                "type": "model",
                "id": model,
                "display_name": model.replace("-", " ").title(),
                "created_at": "2026-01-01T00:00:00Z",
                "lifecycle": "active",
            }
            for model in owner.models
        ]
        page = {
            "data": data,
            "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }
        self._send(200, json.dumps(page).encode(), "application/json", {})

    def do_POST(self) -> None:
        owner = self.server.owner
        assert isinstance(owner, AnthropicServer)
        number = owner._next_id()
        recorded = self._recorded()
        body = recorded.body
        self._request_id = f"req_local_{number:06d}"
        self._message_id = f"msg_local_{number:06d}"
        if self.path.split("?")[0].rstrip("/") != "/v1/messages":
            owner._keep(recorded)
            self._refuse(404, "not_found_error", f"Not found: {self.path}")
            return
        refused = self._refusal(owner, body)
        if refused is not None:
            owner._keep(recorded)
            self._refuse(*refused)
            return
        reply = owner._next_reply(recorded)
        self._answer(reply, json.loads(body), recorded)

    def _refusal(self, owner: AnthropicServer, body: bytes | None) -> tuple[int, str, str] | None:
        """What the API answers a request it refuses (``body`` None: one without a body),
        or None."""
        # The API takes the key as x-api-key, or as a Bearer token, which the anthropic
        # SDK sends since its 2.x releases.
        key = self.headers.get("x-api-key")
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        if key is None and scheme.lower() == "bearer":
            key = token.strip()
        if owner.api_key is not None and key != owner.api_key:
            return 401, "authentication_error", "invalid x-api-key"
        if not self.headers.get("anthropic-version"):
            return 400, "invalid_request_error", "anthropic-version: header is required"
        if body is None:
            return None
        try:
            request = json.loads(body)
        except ValueError:
            return 400, "invalid_request_error", "The request body is not valid JSON"
        if not isinstance(request, dict):
            return 400, "invalid_request_error", "The request body must be an object"
        for field in ("model", "max_tokens", "messages"):
            if field not in request:
                return 400, "invalid_request_error", f"{field}: Field required"
        if not isinstance(request["max_tokens"], int) or request["max_tokens"] < 1:
            return 400, "invalid_request_error", "max_tokens: must be at least 1"
        messages = request["messages"]
        if not isinstance(messages, list) or not all(
            isinstance(m, dict) and m.get("role") in ("user", "assistant") for m in messages
        ):
            return 400, "invalid_request_error", "messages: roles must be user or assistant"
        return None

    def _refuse(self, status: int, kind: str, message: str) -> None:
        self._send(status, error_body(kind, message).encode(), "application/json", {})

    def _send(self, status: int, body: bytes, ctype: str, headers: Mapping[str, str]) -> None:
        super()._send(status, body, ctype, {"request-id": self._request_id, **headers})

    def _answer(self, reply: Reply, request: dict[str, Any], recorded: RecordedRequest) -> None:
        if self._scripted(reply, recorded):
            return
        model = str(request.get("model"))
        chunks = list(reply.chunks) if reply.chunks is not None else _echo(request, model)
        if request.get("stream") is True and not reply.json_for_stream:
            self._event_stream(reply, chunks, request)
            return
        message = self._message(reply, request, chunks)
        data = json.dumps(message).encode()
        if reply.fault == "cut":
            data = data[: len(data) // 2]
        self._send(reply.status, data, "application/json", reply.headers)

    def _message(self, reply: Reply, request: dict[str, Any], chunks: list[str]) -> dict[str, Any]:
        """The whole Message of ``reply``."""
        content: list[dict[str, Any]] = []
        thinking = "".join(_thinking(reply))
        if thinking:
            content.append({"type": "thinking", "thinking": thinking, "signature": "c2ln"})
        text = "".join(chunks)
        if text or not reply.tool_calls:
            content.append({"type": "text", "text": text})
        for number, call in enumerate(reply.tool_calls):
            content.append(
                {
                    "type": "tool_use",
                    "id": _tool_id(call, number),
                    "name": call["name"],
                    "input": _input(call),
                }
            )
        return {
            "id": self._message_id,
            "type": "message",
            "role": "assistant",
            "model": request.get("model"),
            "content": content,
            "stop_reason": _stop_reason(reply),
            "stop_sequence": None,
            "usage": _usage(reply, request, chunks),
        }

    def _event_stream(self, reply: Reply, chunks: list[str], request: dict[str, Any]) -> None:
        self._split = isinstance(reply, AnthropicReply) and reply.split
        self._stream_head(reply, {**_EVENT_STREAM, "request-id": self._request_id})
        usage = _usage(reply, request, chunks)
        started = {**self._message(reply, request, []), "content": [], "stop_reason": None}
        started["usage"] = {**usage, "output_tokens": 1}
        self._sse("message_start", {"message": started})
        self._sse("ping", {})
        index = 0
        thinking = list(_thinking(reply))
        if thinking:
            self._sse(
                "content_block_start",
                {
                    "index": index,
                    "content_block": {"type": "thinking", "thinking": "", "signature": ""},
                },
            )
            for piece in thinking:
                self._delta(index, {"type": "thinking_delta", "thinking": piece})
            self._delta(index, {"type": "signature_delta", "signature": "c2ln"})
            self._sse("content_block_stop", {"index": index})
            index += 1
        if chunks or not reply.tool_calls:
            self._sse(
                "content_block_start",
                {"index": index, "content_block": {"type": "text", "text": ""}},
            )
            for number, text in enumerate(chunks):
                if self._before_chunk(reply, number):
                    return
                self._delta(index, {"type": "text_delta", "text": text})
            self._sse("content_block_stop", {"index": index})
            index += 1
        after = reply.after
        late = reply.fault is not None and after is not None and after >= len(chunks)
        if late and self._fault(reply):
            return
        for number, call in enumerate(reply.tool_calls):
            block = {"type": "tool_use", "id": _tool_id(call, number), "name": call["name"]}
            self._sse(
                "content_block_start", {"index": index, "content_block": {**block, "input": {}}}
            )
            text = json.dumps(_input(call))
            cut = max(1, len(text) // 2)
            for piece in ("", text[:cut], text[cut:]):
                self._delta(index, {"type": "input_json_delta", "partial_json": piece})
            self._sse("content_block_stop", {"index": index})
            index += 1
        self._sse(
            "message_delta",
            {
                "delta": {"stop_reason": _stop_reason(reply), "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        )
        self._sse("message_stop", {})
        self._write_chunk(b"")

    def _fault(self, reply: Reply) -> bool:
        if reply.fault == "error_event":
            kind = reply.error_type if isinstance(reply, AnthropicReply) else "overloaded_error"
            self._write_chunk(
                b"event: error\ndata: %s\n\n" % error_body(kind, "Overloaded").encode()
            )
            self._write_chunk(b"")
            return True
        return super()._fault(reply)  # reset, stall, or cut: no message_stop

    def _sse(self, name: str, doc: dict[str, Any]) -> None:
        data = json.dumps({"type": name, **doc}, ensure_ascii=False)
        event = f"event: {name}\ndata: {data}\n\n".encode()
        if not self._split:
            self._write_chunk(event)
            return
        for index in range(len(event)):
            self._write_chunk(event[index : index + 1])
            self.wfile.flush()

    def _delta(self, index: int, delta: dict[str, Any]) -> None:
        self._sse("content_block_delta", {"index": index, "delta": delta})


def _thinking(reply: Reply) -> Sequence[str]:
    return reply.thinking if isinstance(reply, AnthropicReply) else ()


def _stop_reason(reply: Reply) -> str:
    if isinstance(reply, AnthropicReply) and reply.stop_reason:
        return reply.stop_reason
    return "tool_use" if reply.tool_calls else "end_turn"


def _tool_id(call: Mapping[str, Any], number: int) -> str:
    return str(call.get("id") or f"toolu_local_{number:02d}")


def _input(call: Mapping[str, Any]) -> Any:
    arguments = call.get("arguments", {})
    return json.loads(arguments) if isinstance(arguments, str) else arguments


def _usage(reply: Reply, request: dict[str, Any], chunks: list[str]) -> dict[str, int]:
    """The reply's usage, or counts made up from the words of the request and answer."""
    if reply.usage is not None:
        given = dict(reply.usage)
        if "prompt_tokens" in given:  # a plain Reply's OpenAI counts
            return {
                "input_tokens": given.get("prompt_tokens", 0),
                "output_tokens": given.get("completion_tokens", 0),
            }
        return {"input_tokens": 0, "output_tokens": 0, **given}
    words = len(json.dumps(request.get("messages"), ensure_ascii=False).split())
    return {"input_tokens": max(1, words), "output_tokens": len(chunks) + len(reply.tool_calls)}


def _echo(request: dict[str, Any], model: str) -> list[str]:
    said = ""
    for message in reversed(request.get("messages") or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, list):
            content = " ".join(
                str(block.get("text", "")) for block in content if block.get("type") == "text"
            )
        said = str(content)
        break
    text = f"This is providerhub's local Anthropic stand-in answering as {model}. You said: {said}"
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]
